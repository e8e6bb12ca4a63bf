"""Builds from scenes on disk as users have them: why samples end empty, and reruns that look
again when the scenes change; a configuration with a relative path, run from elsewhere."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from cropland.config import parse_config
from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.export.geotiff import read_sample
from cropland.extraction.runner import extract
from cropland.points.table import write_points
from tests.sources.s2_products import (
    crop_points,
    expected_cloud,
    reference,
    write_bands,
    write_msk_classi,
    write_qa60,
)


def scene(root: Path, date: str, dn_offset: int = 1000) -> Path:
    folder = root / f"T18SUH_{date}T154809"
    write_bands(lambda b: folder / f"T18SUH_{date}T154809_{b}.jp2", dn_offset)
    return folder


def points_file(tmp_path: Path) -> Path:
    inside = crop_points(2, 2023, seed=3)
    far = pd.DataFrame({"point_id": [3], "year": [2023], "lon": [-106.45], "lat": [52.35],
                        "province": ["SK"], "aci_code": [147]})
    return write_points(pd.concat([inside, far], ignore_index=True), tmp_path / "points.csv")


def reasons(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "manifest.sqlite") as db:
        return {t: r or s for t, s, r in db.execute("SELECT task_id, status, reason FROM tasks")}


def test_empty_reasons_and_a_rerun_after_adding_the_mask(tmp_path):
    scenes = tmp_path / "scenes"
    july = scene(scenes, "20230704")  # no mask layer
    write_msk_classi(scene(scenes, "20230803") / "MSK_CLASSI_B00.jp2", everywhere=True)
    september = scene(scenes, "20230902", dn_offset=0)
    write_qa60(september / "QA60.tif")
    (september / "scene.json").write_text('{"eo:cloud_cover": 80, "s2:processing_baseline": "02.14"}')
    cfg = parse_config({
        "years": [2023], "months": [7, 8, 9], "classes": ["CORN", "SOYBEAN"],
        "points": {"path": str(points_file(tmp_path))}, "output": "out",
        "source": {"kind": "local", "level": "L1C", "max_scene_cloud": 5,
                   "options": {"path": "scenes"}}}, base=tmp_path)
    first = extract(cfg, progress=False)
    got = reasons(cfg.output)
    kinds = {t: r.split(":")[0] for t, r in got.items()}
    assert kinds == {
        "1_202307": "no mask", "2_202307": "no mask", "3_202307": "no coverage",
        "1_202308": "all cloudy", "2_202308": "all cloudy", "3_202308": "no coverage",
        "1_202309": "all cloudy", "2_202309": "all cloudy", "3_202309": "no coverage",
    }
    assert "80 % cloudy" in got["1_202309"] and "cloud or shadow" in got["1_202308"]
    assert first.counts == {"empty": 9}
    assert first.empty_reasons == {"no mask": 2, "all cloudy": 4, "no coverage": 3}

    # nothing changed: the empty tasks are not run again
    again = extract(cfg, progress=False)
    with sqlite3.connect(cfg.output / "manifest.sqlite") as db:
        assert {a for (a,) in db.execute("SELECT attempts FROM tasks")} == {1}
    assert again.counts == first.counts

    write_msk_classi(july / "MSK_CLASSI_B00.jp2")
    after = extract(cfg, progress=False)
    assert after.counts == {"done": 2, "empty": 7}
    assert after.empty_reasons == {"all cloudy": 4, "no coverage": 3}
    points = pd.read_csv(cfg.output / "points.csv")
    clouds = []
    for pid in (1, 2):
        r = points[points["point_id"] == pid].iloc[0]
        grid = PatchGrid.around(r.lon, r.lat)
        [path] = (cfg.output / "tif").rglob(f"POINT_{pid}_202307_*.tif")
        data, tags = read_sample(path)
        clouds.append(cloud := expected_cloud(grid))
        np.testing.assert_array_equal(data[-1] == 0, cloud)  # VALID
        for band in ("B4", "B11"):
            ref = reference(band, grid)
            got_band = data[BAND_NAMES.index(band)]
            np.testing.assert_allclose(got_band[~cloud], ref[~cloud], atol=1e-4)
        assert tags["SCENES"] == july.name
    assert 0 < np.mean(clouds) < 1


def _cropland(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("cropland")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, check=False)


def test_config_with_a_relative_path_builds_from_any_folder(tmp_path):
    project = tmp_path / "project"
    folder = scene(project / "scenes", "20230704")
    write_msk_classi(folder / "MSK_CLASSI_B00.jp2")
    points_file(project)
    config = {"years": [2023], "months": [7], "classes": ["CORN", "SOYBEAN", "BARLEY"],
              "points": {"path": "points.csv"}, "output": "out",
              "source": {"kind": "local", "level": "L1C", "options": {"path": "scenes"}}}
    (project / "build.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = _cropland("build", "--config", "../project/build.yaml", cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert "1 empty (1 no coverage)" in run.stderr and "2 done" in run.stderr
    [tif, *_] = sorted((project / "out" / "tif").rglob("POINT_1_*.tif"))
    with rasterio.open(tif) as src:
        b4 = src.read(BAND_NAMES.index("B4") + 1)
        grid = PatchGrid(src.crs.to_string(), *src.xy(32, 32, offset="ul"))
    clear = np.isfinite(b4)
    assert clear.mean() > 0.1
    np.testing.assert_allclose(b4[clear], reference("B4", grid)[clear], atol=1e-4)


def test_a_bad_source_path_fails_in_one_line_before_any_job(tmp_path):
    points_file(tmp_path)
    (tmp_path / "build.yaml").write_text(yaml.safe_dump({
        "years": [2023], "points": {"path": "points.csv"}, "output": "out",
        "source": {"kind": "local", "level": "L1C", "options": {"path": "no-such-folder"}}}))
    run = _cropland("build", "--config", "build.yaml", cwd=tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert "source.options.path" in line and "no-such-folder does not exist" in line
    assert not (tmp_path / "out" / "manifest.sqlite").exists()


@pytest.mark.parametrize("content", ["", "nothing here"])
def test_a_folder_without_scenes_fails_in_one_line(tmp_path, content):
    (tmp_path / "scenes" / "notes").mkdir(parents=True)
    (tmp_path / "scenes" / "notes" / "readme.txt").write_text(content)
    points_file(tmp_path)
    (tmp_path / "build.yaml").write_text(yaml.safe_dump({
        "years": [2023], "points": {"path": "points.csv"}, "output": "out",
        "source": {"kind": "local", "level": "L1C", "options": {"path": "scenes"}}}))
    run = _cropland("build", "--config", "build.yaml", cwd=tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert "no SAFE products" in line


def test_a_build_with_failed_samples_exits_1(tmp_path):
    """A damaged scene file fails August's samples: the build says so, and how to redo them, and
    exits 1 (not 0); July's samples are done."""
    july, august = scene(tmp_path / "scenes", "20230704"), scene(tmp_path / "scenes", "20230803")
    for folder in (july, august):
        write_msk_classi(folder / "MSK_CLASSI_B00.jp2")
    [band] = august.glob("*_B04.jp2")
    band.write_bytes(band.read_bytes()[:300])  # cut short: unreadable
    points_file(tmp_path)
    (tmp_path / "build.yaml").write_text(yaml.safe_dump({
        "years": [2023], "months": [7, 8], "classes": ["CORN", "SOYBEAN"],
        "points": {"path": "points.csv"}, "output": "out",
        "source": {"kind": "local", "level": "L1C", "options": {"path": "scenes"}}}))
    run = _cropland("build", "--config", "build.yaml", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "2 done" in run.stderr and "2 failed" in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "2 samples failed: the dataset lacks them; fix the cause above and run the same command "
        "with --retry-failed")
