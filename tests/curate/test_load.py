"""A small version of benchmarks/curate_load.py: concurrent reviewers, exactly-once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from cropland.curate.store import Store

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "curate_load.py"


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("curate_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_concurrent_reviewers_exactly_once(load, server, db, dataset):
    store = Store(db)
    tokens = [store.add_reviewer(f"r{i}") for i in range(4)]
    ids = sorted(p.stem for p in (dataset / "tif").rglob("*.tif"))
    result, _ = load.run_load(server, tokens, ids, per_reviewer=40, retry_share=0.25)
    assert result.errors == []
    assert result.retries > 10  # the retries really happened
    check = load.check_exactly_once(db, result.decision_ids)
    assert check == {"sent": 160, "recorded": 160, "missing": 0, "duplicated": 0, "unexpected": 0}
    assert len(result.latencies) == 160 + result.retries
