"""Fetching the published point lists: pinned URL and SHA-256, a cache, one-line errors.

A loopback HTTP server stands in for raw.githubusercontent.com: it serves the repository's
paths, the 2019 list being the real file of the shared test data (read in place, never
copied into the repository).
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest
from typer.testing import CliRunner

from cropland.cli import app
from cropland.errors import PointsError
from cropland.points.published import BASE_URL_ENV, POINT_LISTS, fetch_point_list
from cropland.points.table import read_points
from tests.sources.loopback import free_port

runner = CliRunner()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path, original_csv):
    """(base URL, root folder) of a loopback copy of the repository at the pinned commit."""
    path, sha256 = POINT_LISTS["2019"]
    if hashlib.sha256(original_csv.read_bytes()).hexdigest() != sha256:
        pytest.fail("the shared 2019 list is not the pinned published file")
    root = tmp_path / "mirror"
    (root / path).parent.mkdir(parents=True)
    (root / path).symlink_to(original_csv)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_import_fetches_the_published_list_once(tmp_path, mirror):
    url, _ = mirror
    cache, out = tmp_path / "cache", tmp_path / "points.csv"
    args = ["points", "import", "--published", "2019", "--cache", str(cache), "--base-url", url,
            "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_points(out)["point_id"].nunique() == 4984
    [cached] = cache.iterdir()
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == POINT_LISTS["2019"][1]
    # from the cache: no server needed any more
    result = runner.invoke(app, [*args[:6], "--base-url", f"http://127.0.0.1:{free_port()}",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output


def test_offline_is_one_clear_line(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PointsError, match=r"cannot reach http://127.0.0.1:\d+/.*\(offline\?\)"):
        fetch_point_list("2019", tmp_path, closed)
    assert not any(tmp_path.iterdir())


def test_a_file_that_is_not_the_published_one_is_refused(tmp_path, mirror, monkeypatch):
    url, root = mirror
    path = root / POINT_LISTS["2019"][0]
    text = path.read_text()
    path.unlink()
    path.write_text(text.replace("barley", "wheat", 1))  # one word changed on the way
    monkeypatch.setenv(BASE_URL_ENV, url)  # the base URL from the environment
    with pytest.raises(PointsError, match="is not the published file"):
        fetch_point_list("2019", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.csv"))


def test_unknown_name_and_path_with_published_are_refused(tmp_path):
    with pytest.raises(PointsError, match="no published point list '1999'"):
        fetch_point_list("1999", tmp_path)
    result = runner.invoke(app, ["points", "import", "x.csv", "--published", "2019", "-o", "p.csv"])
    assert result.exit_code != 0 and "not both" in str(result.exception)

