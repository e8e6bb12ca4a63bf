"""A small fake dataset, a decision store with two reviewers, the app and a live server."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tests.curate.curate_fakes import make_dataset, standard_specs

pytest.importorskip("fastapi", reason="the curate extra is not installed: pip install -e '.[curate]'")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("dataset"), standard_specs())


@pytest.fixture(scope="session")
def scored_db(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the dataset's quality scores (computed once per session)."""
    from cropland.config import CurateConfig
    from cropland.curate.catalog import Catalog
    from cropland.curate.rules import ensure_quality
    from cropland.curate.store import Store

    path = tmp_path_factory.mktemp("scored") / "curate.sqlite"
    store = Store(path)
    ensure_quality(Catalog(dataset), store, CurateConfig())
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def db(tmp_path: Path, scored_db: Path) -> Path:
    """A fresh decision store per test, starting from the cached scores."""
    path = tmp_path / "curate.sqlite"
    shutil.copy(scored_db, path)
    return path


@pytest.fixture
def tokens(db: Path) -> dict[str, str]:
    from cropland.curate.store import Store

    store = Store(db)
    return {name: store.add_reviewer(name) for name in ("alice", "bob")}


@pytest.fixture
def app(dataset: Path, db: Path, tokens: dict[str, str]):
    from cropland.curate.app import create_app

    return create_app(dataset, db)


@pytest.fixture
def client(app, tokens: dict[str, str]):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {tokens['alice']}"
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(app) -> Iterator[str]:
    """The app served by a real uvicorn on loopback; yields its base URL."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
