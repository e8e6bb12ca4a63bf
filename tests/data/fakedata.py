"""Fake datasets in the documented format (docs/format.md), written by the tests themselves.

GeoTIFFs: 19 float32 bands (12 bands, 6 indices, VALID), NaN nodata, band descriptions and
tags, under ``tif/{year}/{CLASS}/``; PNG trees: ``{year}/{TYPE}/{split}/{CLASS}/..._{TYPE}.png``;
``splits.json`` grouped by point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cropland.core.naming import SampleName
from tests.data.synthetic import write_splits

BAND_DESCRIPTIONS = [
    "B1",
    "B2",
    "B3",
    "B4",
    "B5",
    "B6",
    "B7",
    "B8",
    "B8A",
    "B9",
    "B11",
    "B12",
    "NDVI",
    "NDVI45",
    "GNDVI",
    "OSAVI",
    "PSRI",
    "NDWI",
    "VALID",
]


def sample_values(name: SampleName, size: int) -> np.ndarray:
    """Deterministic 19-band values that identify the sample (band b = point + month/100 + b/1000)."""
    rng = np.random.default_rng(name.point_id * 100 + name.month + name.year)
    data = rng.uniform(0, 0.5, (19, size, size)).astype(np.float32)
    data[:, 0, 0] = name.point_id + name.month / 100 + np.arange(19) / 1000
    data[18] = 3
    return data


def write_tif(path: Path, data: np.ndarray) -> None:
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": "float32",
        "crs": "EPSG:3978",
        "transform": from_origin(0, 640, 10, 10),
        "nodata": float("nan"),
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(BAND_DESCRIPTIONS[: data.shape[0]], start=1):
            dst.set_band_description(i, d)
        dst.update_tags(SYNTHETIC="yes")


def make_tif_dataset(root: Path, points: dict[int, tuple[str, str]], months_of: dict[int, list[int]],
                     years=(2019,), size: int = 64) -> dict[SampleName, np.ndarray]:
    """``points``: id -> (class, split); ``months_of``: id -> months present. Returns the arrays."""
    written = {}
    for point, (label, _) in points.items():
        for year in years:
            for month in months_of[point]:
                name = SampleName(point, year, month, "AB", label)
                data = sample_values(name, size)
                write_tif(root / "tif" / str(year) / label / f"{name.stem}.tif", data)
                written[name] = data
    write_splits(root, {p: s for p, (_, s) in points.items()})
    return written


def make_png_tree(root: Path, points: dict[int, tuple[str, str]], months_of: dict[int, list[int]],
                  types=("RGB", "NDVI"), year: int = 2019, size: int = 65) -> dict[tuple[SampleName, str], np.ndarray]:
    """A published-layout PNG tree; index PNGs are 3 equal channels. Returns uint8 (H, W, 3) arrays."""
    from PIL import Image

    written = {}
    for point, (label, split) in points.items():
        for month in months_of[point]:
            name = SampleName(point, year, month, "AB", label)
            for t in types:
                rng = np.random.default_rng(point * 1000 + month * 10 + len(t))
                if t == "RGB":
                    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                else:
                    pixels = np.repeat(rng.integers(0, 256, (size, size, 1), dtype=np.uint8), 3, axis=2)
                path = root / str(year) / t / split / label / f"{name.with_type(t)}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)
                written[(name, t)] = pixels
    return written
