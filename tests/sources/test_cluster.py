"""Where extraction jobs run: in-process, Dask, or a process pool without Dask."""

from __future__ import annotations

import sys

import pytest

from cropland.errors import ConfigError
from cropland.extraction.cluster import extraction_executor


def test_one_worker_runs_in_process():
    with extraction_executor(None, 1) as executor:
        assert executor is None


def test_without_dask_workers_fall_back_and_scheduler_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with extraction_executor(None, 2) as executor:
        assert executor is None  # the runner then uses a process pool of 2
    with pytest.raises(ConfigError, match=r"cropland\[stac\]"), \
            extraction_executor("tcp://127.0.0.1:1", 1):
        pass
