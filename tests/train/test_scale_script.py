"""The training-at-scale benchmark runs from the source tree without rasterio or pydantic (as on
the GPU machine), writes a valid pack of the published shape, and both paths see the same batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_scale_script_measures_both_paths(tmp_path):
    out, doc = tmp_path / "figures.json", tmp_path / "benchmarks.md"
    code = (
        "import runpy, sys; sys.modules.update(dict.fromkeys(['rasterio', 'osgeo', 'pyproj', 'pydantic'])); "
        f"sys.argv = ['train_scale.py', '--images', '3000', '--work', {str(tmp_path / 'work')!r}, '--workers', '1', "
        f"'--batch-size', '64', '--keep', '--doc', {str(doc)!r}, '--json', {str(out)!r}]; "
        "runpy.run_path('benchmarks/train_scale.py', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    resident, stream = json.loads(out.read_text())
    assert (resident["loading"], stream["loading"]) == ("resident", "stream")
    manifest = json.loads((tmp_path / "work" / "pack-3000" / "manifest.json").read_text())
    counts = {s: e["count"] for s, e in manifest["splits"].items()}
    assert sum(counts.values()) == 3000 and resident["train_images"] == stream["train_images"] == counts["training"]
    assert 0.6 < counts["training"] / 3000 < 0.8
    points = {line.split(",")[1] for s in counts for line in
              (tmp_path / "work" / "pack-3000" / f"{s}_samples.csv").read_text().splitlines()[1:]}
    assert abs(len(points) - 3000 * 6633 / 78536) <= 1  # the published images per point
    assert resident["train_accuracy"] == stream["train_accuracy"]  # the same batches, the same training
    assert all(r["peak_private_bytes"] > 0 and r["epoch_s"] > 0 for r in (resident, stream))
    text = doc.read_text()
    assert "## Training at scale: resident vs streaming (CPU)" in text and "| 3,000 |" in text
