"""The throughput benchmark runs from the source tree without rasterio or pydantic (as on the GPU machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_throughput_script_runs_without_gdal_or_pydantic(tmp_path):
    out = tmp_path / "figures.json"
    code = (
        "import runpy, sys; sys.modules.update(dict.fromkeys(['rasterio', 'osgeo', 'pyproj', 'pydantic'])); "
        f"sys.argv = ['train_throughput.py', '--device', 'cpu', '--models', 'cnn3d,small_cnn', '--steps', '1', "
        f"'--warmup', '0', '--points', '10', '--workers', '0', '--batch-size', '4', '--temporal-batch-size', '2', "
        f"'--no-doc', '--json', {str(out)!r}]; "
        "runpy.run_path('benchmarks/train_throughput.py', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert {(f["model"], f["path"]) for f in figures} == {
        ("cnn3d", "fast"), ("cnn3d", "naive"), ("small_cnn", "fast"), ("small_cnn", "naive")
    }
    assert all(f["images_per_s"] > 0 for f in figures)
    assert next(f for f in figures if f["model"] == "cnn3d")["images_per_item"] == 5


def test_training_modules_import_without_gdal_or_pydantic():
    code = (
        "import sys; sys.modules.update(dict.fromkeys(['rasterio', 'osgeo', 'pyproj', 'pydantic'])); "
        "import cropland.data.readers, cropland.data.pack, cropland.data.stream, cropland.models, cropland.train.loop"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
