"""Synthetic samples in the dataset's formats, for tests and throughput benchmarks (no GDAL).

The pixels are made up, and everything written here says so. Classes come in pairs that
look alike month by month but peak at different months, so a model that sees the months of
a point-year (temporal) can separate what a one-image model confuses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from cropland import split as split_file
from cropland.core.bands import BAND_NAMES
from cropland.core.indices import compute_indices
from cropland.core.naming import SampleName
from cropland.data.readers import SPLITS
from cropland.export.layout import png_path
from cropland.io import atomic_path

DEMO_CLASSES: tuple[str, ...] = ("BARLEY", "CANOLA", "CORN", "OAT", "SOYBEAN", "SPRING_WHEAT")


def assign_splits(point_ids: Sequence[int], seed: int = 0) -> dict[int, str]:
    """70/15/15 split of points (grouped by point: one split for every year)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(point_ids))
    n_train, n_val = round(0.7 * len(point_ids)), round(0.15 * len(point_ids))
    split_of = {}
    for rank, i in enumerate(order):
        split_of[int(point_ids[i])] = SPLITS[0] if rank < n_train else SPLITS[1] if rank < n_train + n_val else SPLITS[2]
    return split_of


def synthetic_image(label_index: int, month: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """18-channel float32 ``(18, size, size)``: 12 reflectance bands, then the 6 indices."""
    pair, shift = divmod(label_index, 2)
    base = 0.05 + 0.25 * np.abs(np.sin(np.arange(12) * (pair + 1) * 0.7))
    growth = np.exp(-(((month - 6.5 - 2.0 * shift) / 1.2) ** 2))
    spectrum = base * (1 + 0.8 * growth * np.linspace(-0.5, 1.0, 12))
    yy, xx = np.mgrid[0:size, 0:size] / size
    texture = 0.03 * np.sin(2 * np.pi * (xx * (pair + 2) + rng.uniform())) * np.cos(2 * np.pi * yy)
    noise = rng.normal(0, 0.02, (12, size, size))
    bands = np.clip(spectrum[:, None, None] * (1 + rng.normal(0, 0.08)) + texture + noise, 0.001, 1)
    bands = bands.astype(np.float32)
    return np.concatenate([bands, compute_indices(bands)])


def synthetic_samples(
    n_points: int = 40,
    years: Sequence[int] = (2019,),
    months: Sequence[int] = (6, 7, 8, 9, 10),
    classes: Sequence[str] = DEMO_CLASSES,
    size: int = 65,
    seed: int = 0,
    missing_rate: float = 0.1,
) -> Iterator[tuple[SampleName, str, np.ndarray]]:
    """Yield ``(name, split, image)``; about ``missing_rate`` of the months are left out."""
    rng = np.random.default_rng(seed)
    point_ids = list(range(1, n_points + 1))
    split_of = assign_splits(point_ids, seed)
    for point in point_ids:
        province = ("AB", "SK", "MB", "ON")[point % 4]
        for year in years:
            label_index = int(rng.integers(len(classes)))
            for month in months:
                if rng.uniform() < missing_rate:
                    continue
                name = SampleName(point, year, month, province, classes[label_index])
                yield name, split_of[point], synthetic_image(label_index, month, size, rng)


def render_png(image: np.ndarray, image_type: str, rgb_max: float = 0.3) -> np.ndarray:
    """The published rendering of an 18-channel image: uint8 ``(H, W, 3)`` (docs/format.md)."""
    if image_type == "RGB":
        rgb = image[[BAND_NAMES.index(b) for b in ("B4", "B3", "B2")]] * (255 / rgb_max)
    else:
        index = image[12 + ("NDVI", "NDVI45", "GNDVI", "OSAVI", "PSRI", "NDWI").index(image_type)]
        rgb = np.repeat(((index + 1) / 2 * 255)[None], 3, axis=0)
    return np.nan_to_num(np.clip(rgb, 0, 255), nan=0).round().astype(np.uint8).transpose(1, 2, 0)


def write_png_tree(
    root: str | Path,
    samples: Sequence[tuple[SampleName, str, np.ndarray]],
    image_types: Sequence[str] = ("RGB", "NDVI"),
) -> Path:
    """Write ``{year}/{TYPE}/{split}/{CLASS}/POINT_..._{TYPE}.png`` and ``splits.json``."""
    from PIL import Image

    root = Path(root)
    for name, split, image in samples:
        for image_type in image_types:
            with atomic_path(png_path(root, name, image_type, split)) as tmp:
                Image.fromarray(render_png(image, image_type)).save(tmp, format="PNG")
    write_splits(root, {name.point_id: split for name, split, _ in samples})
    return root


def write_splits(root: str | Path, assignments: dict[int, str], seed: int = 0) -> Path:
    """``splits.json`` in the documented format (checksummed, as ``cropland.split`` reads it)."""
    fractions = {"training": 0.7, "validation": 0.15, "test": 0.15}
    return split_file.write_splits(split_file.Splits(assignments, seed, fractions), Path(root) / "splits.json")
