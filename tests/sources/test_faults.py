"""Builds from the loopback STAC API survive network faults, Dask scale-out and kill -9.

Reference: a fault-free, in-process extraction. Compared: every sample GeoTIFF (pixels
and tags, bit for bit) and every task's status and scenes in the manifest.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cropland.config import load_config
from cropland.export.geotiff import read_sample
from cropland.extraction.cluster import extraction_executor
from cropland.extraction.runner import MANIFEST_FILE, extract
from cropland.points.table import write_points
from tests.sources.s2_loopback import box_points


def write_config(loopback, folder: Path, **source_options) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_points(box_points(8), folder / "points.csv")
    cfg = {
        "name": "loopback", "years": [2019], "months": [6, 7],
        "classes": ["CORN", "SOYBEAN", "OAT", "BARLEY"],
        "points": {"path": "points.csv"},
        "source": {"kind": "stac", "level": "L2A", "max_scene_cloud": 50, "options": {
            "catalogue": "earth-search", "url": loopback.stac_url,
            "collection": "sentinel-2-l2a", "retries": 10, **source_options}},
        "export": {"png": False, "raw_zip": False},
        "output": "out",
    }
    path = folder / "build.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def outputs(root: Path) -> tuple[dict, dict]:
    """Sample files (pixels, tags) and manifest rows (status, scenes) of a build folder."""
    samples = {}
    for tif in sorted((root / "tif").rglob("*.tif")):
        data, tags = read_sample(tif)
        samples[str(tif.relative_to(root))] = (data, tags)
    with sqlite3.connect(root / MANIFEST_FILE) as db:
        rows = {r[0]: r[1:] for r in db.execute("SELECT task_id, status, path, scenes FROM tasks")}
    return samples, rows


def assert_same(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    assert a[1] == b[1]
    assert a[0].keys() == b[0].keys()
    for name, (data, tags) in a[0].items():
        np.testing.assert_array_equal(data, b[0][name][0], err_msg=name)
        assert tags == b[0][name][1]


@pytest.fixture(scope="module")
def reference(loopback, tmp_path_factory):
    loopback.faults(0)
    cfg = load_config(write_config(loopback, tmp_path_factory.mktemp("reference")))
    summary = extract(cfg, progress=False)
    assert summary.complete and summary.counts.get("done", 0) >= 8
    return outputs(cfg.output)


def test_faults_on_dask_workers_give_identical_outputs(loopback, reference, tmp_path):
    cfg = load_config(write_config(loopback, tmp_path))
    loopback.faults(0.2, seed=1)
    before = dict(loopback.cog_proxy.counters.faults)
    try:
        with extraction_executor(None, workers=2) as executor:
            summary = extract(cfg, executor=executor, workers=2, progress=False)
    finally:
        loopback.faults(0)
    injected = {k: v - before.get(k, 0) for k, v in loopback.cog_proxy.counters.faults.items()}
    assert all(injected.get(k, 0) > 0 for k in ("500", "429", "delay", "truncate")), injected
    assert summary.complete, summary.failures
    assert_same(outputs(cfg.output), reference)


def test_failed_tasks_are_recorded_then_retried(loopback, reference, tmp_path):
    cfg = load_config(write_config(loopback, tmp_path, retries=1))
    loopback.faults(1.0)  # every request fails: every job fails, the build goes on
    try:
        summary = extract(cfg, progress=False)
    finally:
        loopback.faults(0)
    assert summary.counts.get("failed") == len(reference[1])
    assert all("Error" in reason for _, reason in summary.failures)
    assert extract(cfg, progress=False).counts.get("failed")  # not retried by default
    summary = extract(cfg, retry_failed=True, progress=False)
    assert summary.complete
    assert_same(outputs(cfg.output), reference)


def test_resume_after_kill_9_on_a_dask_scheduler(loopback, reference, tmp_path):
    config = write_config(loopback, tmp_path)
    manifest = tmp_path / "out" / MANIFEST_FILE
    cmd = [sys.executable, "-m", "cropland.cli", "build", "--config", str(config)]
    loopback.faults(0.2, seed=2)  # slows the build down so it is caught mid-way
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        done = _wait_for_first_done(manifest, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        loopback.faults(0)
    counts = _counts(manifest)
    assert not counts.get("failed"), _failures(manifest)
    assert counts.get("pending"), f"the build finished before it was killed: {counts}"
    assert done > 0
    from dask.distributed import LocalCluster

    # resume on a Dask scheduler: `cropland build --scheduler ADDRESS`
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        subprocess.run([*cmd, "--scheduler", cluster.scheduler_address], check=True,
                       capture_output=True, timeout=300)
    assert_same(outputs(tmp_path / "out"), reference)


def _wait_for_first_done(manifest: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"build exited early: {proc.stderr.read().decode()[-2000:]}")
        if manifest.exists() and (n := _counts(manifest).get("done", 0)):
            return n
        time.sleep(0.05)
    raise AssertionError("no task finished in time")


def _counts(manifest: Path) -> dict[str, int]:
    try:
        with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=5) as db:
            return dict(db.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall())
    except sqlite3.OperationalError:
        return {}


def _failures(manifest: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=5) as db:
        return db.execute("SELECT task_id, reason FROM tasks WHERE status = 'failed'").fetchall()



def test_a_build_whose_every_sample_failed_says_why_in_one_line(loopback, tmp_path, monkeypatch, capsys):
    import cropland.cli

    config = write_config(loopback, tmp_path, retries=1)
    monkeypatch.setattr(sys, "argv", ["cropland", "build", "--config", str(config)])
    loopback.faults(1.0)  # every request fails
    try:
        with pytest.raises(SystemExit) as exit_info:
            cropland.cli.run()
    finally:
        loopback.faults(0)
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: no sample could be extracted (16 failed; first failure, 1_201906: ")
    assert line.endswith("fix the cause and run the same command with --retry-failed")
