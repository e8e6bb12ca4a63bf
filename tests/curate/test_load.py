"""A small version of benchmarks/curate_load.py: concurrent reviewers, exactly-once, counters."""

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


def test_concurrent_reviewers_exactly_once(load, server, db):
    store = Store(db)
    tokens = [store.add_reviewer(f"r{i}") for i in range(4)]
    result, _ = load.run_load(server, tokens, ["BARLEY", "CORN", None], per_reviewer=40,
                              retry_share=0.25, undo_share=0.2)
    # BARLEY and CORN run out of samples to decide: their reviewers say so and stop
    assert {e for e in result.errors} <= {"no sample left to decide for BARLEY",
                                         "no sample left to decide for CORN"}
    assert result.retries > 10 and result.undos > 3  # the retries and undos really happened
    check = load.check_exactly_once(store, result.change_ids)
    sent = len(result.change_ids)
    assert check == {"sent": sent, "recorded": sent, "missing": 0, "duplicated": 0, "unexpected": 0}
    assert sent == result.decisions + result.undos
    shown = store.progress()
    assert {k: shown[k] for k in ("quality", "decided", "to_review")} == load.recount(store)
