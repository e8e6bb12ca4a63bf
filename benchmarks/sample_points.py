"""Benchmark: field-centre sampling from a large ACI raster, with its peak memory.

Writes a synthetic 20,000 x 20,000 ACI GeoTIFF (30 m pixels: 600 km a side, centred in
Saskatchewan; tiled 512 x 512, DEFLATE) into a temporary folder, strip by strip, then
samples points from it in a child process and measures that process's wall time and peak
memory (``ru_maxrss`` of the child, and the Python heap peak from ``tracemalloc``). The
figures replace the "Field-point sampling" section of docs/benchmarks.md.

    python benchmarks/sample_points.py [--size 20000] [--quota 500] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _doc import provenance, write_section  # noqa: E402

CLASSES = ["BARLEY", "CANOLA", "CORN", "OAT", "SOYBEAN", "SPRING_WHEAT", "PASTURE"]
FIELD_PX = 40  # fields of 1.2 km, separated by one-pixel roads


def write_raster(path: Path, size: int, seed: int = 0) -> float:
    """Write the synthetic ACI raster strip by strip; return the seconds it took."""
    import rasterio
    from affine import Affine
    from pyproj import Transformer

    from cropland.core.classes import get_class

    codes = np.array([get_class(c).code for c in CLASSES] + [110, 110, 80], dtype=np.uint8)
    x, y = Transformer.from_crs(4326, 3978, always_xy=True).transform(-105.5, 52.0)
    left, top = round(x - size * 15, -1), round(y + size * 15, -1)
    rng = np.random.default_rng(seed)
    n_fields = size // FIELD_PX + 1
    field_class = codes[rng.integers(0, len(codes), size=(n_fields, n_fields))]
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint8",
        "crs": "EPSG:3978", "transform": Affine(30.0, 0, left, 0, -30.0, top), "nodata": 0,
        "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    start = time.perf_counter()
    cols = np.arange(size)
    with rasterio.open(path, "w", **profile) as dst:
        for row0 in range(0, size, 512):
            rows = np.arange(row0, min(row0 + 512, size))
            strip = field_class[rows[:, None] // FIELD_PX, cols[None, :] // FIELD_PX]
            strip[(rows % FIELD_PX == 0)[:, None] | (cols % FIELD_PX == 0)[None, :]] = 34  # roads
            noise = rng.random(strip.shape) < 0.02
            strip[noise] = 110  # 2 % weeds and misclassified pixels
            dst.write(strip, 1, window=rasterio.windows.Window(0, row0, size, len(rows)))
    return time.perf_counter() - start


def sample_child(raster: Path, quota: int) -> None:
    """Run in the child: sample, then print the figures as JSON."""
    import tracemalloc

    from cropland.points.aci import open_aci
    from cropland.points.config import SampleConfig
    from cropland.points.sample import sample_points

    tracemalloc.start()
    cfg = SampleConfig(year=2019, aci=[str(raster)], classes=CLASSES, quota=quota, seed=0)
    start = time.perf_counter()
    with open_aci(raster, 2019) as reader:
        result = sample_points([reader], cfg)
    seconds = time.perf_counter() - start
    _, heap_peak = tracemalloc.get_traced_memory()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "seconds": seconds, "points": len(result.points), "heap_peak": heap_peak,
        "candidates": int(result.summary["candidates"].sum()),
        "provinces": result.points["province"].value_counts().to_dict(),
        "rss_peak_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


def run(size: int, quota: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        raster = Path(tmp) / f"aci_{size}.tif"
        write_seconds = write_raster(raster, size)
        file_mb = raster.stat().st_size / 2**20
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(raster), "--quota", str(quota)],
            check=True, capture_output=True, text=True)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
    figures["rss_peak_children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {**figures, "write_seconds": write_seconds, "file_mb": file_mb, "size": size,
            "quota": quota}


def write_doc(f: dict, command: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md."""
    gib = 2**30
    provinces = ", ".join(f"{k} {v}" for k, v in sorted(f["provinces"].items()))
    section = "\n".join([
        "## Field-point sampling",
        "",
        provenance(command),
        "",
        (f"A synthetic ACI raster of {f['size']:,} x {f['size']:,} pixels (30 m, tiled 512 x 512, "
         f"DEFLATE, {f['file_mb']:.0f} MB; fields of 1.2 km, 2 % noise) is written by the "
         f"benchmark; {len(CLASSES)} classes are sampled with a quota of {f['quota']} each "
         "(640 m window, purity 0.9, 3 x 3 uniform centre, 910 m spacing)."),
        "",
        "| figure | value |",
        "|---|---:|",
        f"| write the raster | {f['write_seconds']:.0f} s |",
        (f"| sample (read every pixel, thin, locate, select) | {f['seconds']:.0f} s wall, "
         f"{f['cpu_seconds']:.0f} s CPU |"),
        f"| candidates kept (after thinning, in provinces) | {f['candidates']:,} |",
        f"| points sampled | {f['points']:,} |",
        (f"| peak resident memory of the sampling process | "
         f"{f['rss_peak_children'] / gib:.2f} GiB |"),
        f"| peak Python heap (tracemalloc) | {f['heap_peak'] / gib:.2f} GiB |",
        "",
        (f"Points per province: {provinces} (the raster reaches into the United States, whose "
         "candidates are dropped)."),
    ])
    write_section("sample_points", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="pixels per side")
    parser.add_argument("--quota", type=int, default=500, help="points per class")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sample_child(args.child, args.quota)
        return
    figures = run(args.size, args.quota)
    print(json.dumps(figures, indent=1))
    if figures["rss_peak_children"] >= 2**30:
        print("peak memory is over 1 GiB", file=sys.stderr)
    if not args.no_write:
        command = "python benchmarks/sample_points.py" + "".join(
            f" --{k} {getattr(args, k)}" for k in ("size", "quota")
            if getattr(args, k) != parser.get_default(k))
        write_doc(figures, command)


if __name__ == "__main__":
    main()
