"""Kill a real build with SIGKILL, run it again: it completes without redoing finished work."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from cropland.extraction.manifest import Manifest
from cropland.io import TEMP_SUFFIX

CONFIG = {
    "name": "resume-test",
    "years": [2019],
    "months": [6, 7, 8, 9, 10],
    "classes": ["CORN", "OAT", "MIXEDWOOD"],
    "points": {"synthetic_per_class": 4, "synthetic_clusters": 2},
    "export": {"raw_zip": False},
    "seed": 1,
}


def _build(config: Path, out: Path, **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cropland.cli", "build", "--config", str(config), "--out", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)


def _tifs(out: Path) -> dict[str, np.ndarray]:
    return {p.name: rasterio.open(p).read() for p in sorted((out / "tif").rglob("*.tif"))}


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path):
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert _build(config, reference).wait(timeout=300) == 0

    proc = _build(config, resumed)
    deadline = time.time() + 120
    while len(list((resumed / "tif").rglob("POINT_*.tif"))) < 8 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in (resumed / "tif").rglob("POINT_*.tif")}
    assert 0 < len(done_before) < 60, "the kill should land mid-build"

    rerun = _build(config, resumed)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
    with Manifest(resumed / "manifest.sqlite") as m:
        assert set(m.counts()) <= {"done", "empty"}
    after = {p.name: p.stat().st_mtime_ns for p in (resumed / "tif").rglob("POINT_*.tif")}
    assert all(after[name] == mtime for name, mtime in done_before.items()), "finished samples were redone"
    assert not list(resumed.rglob(f"*{TEMP_SUFFIX}")), "a partial file was left behind"
    ref, res = _tifs(reference), _tifs(resumed)
    assert ref.keys() == res.keys()
    for name in ref:
        np.testing.assert_array_equal(ref[name], res[name], err_msg=name)
    pngs = sorted(p.relative_to(resumed) for p in resumed.rglob("*.png") if "stats" not in p.parts)
    assert pngs == sorted(p.relative_to(reference) for p in reference.rglob("*.png") if "stats" not in p.parts)
