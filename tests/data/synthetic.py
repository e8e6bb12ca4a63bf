"""Synthetic samples written with the package's own renderer and splits file, for tests.

The pixels are made up. Classes come in pairs that
look alike month by month but peak at different months, so a model that sees the months of
a point-year (temporal) can separate what a one-image model confuses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cropland import dataset
from cropland.config import RenderConfig, SplitConfig
from cropland.core.indices import compute_indices
from cropland.core.naming import SampleName
from cropland.export.png import write_pngs_of
from cropland.split import make_splits

DEMO_CLASSES: tuple[str, ...] = ("BARLEY", "CANOLA", "CORN", "OAT", "SOYBEAN", "SPRING_WHEAT")


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
    """Yield ``(name, split, image)``; about ``missing_rate`` of the months are left out.

    Splits are drawn by :func:`cropland.split.make_splits` (70/15/15 by point).
    """
    rng = np.random.default_rng(seed)
    samples = []
    for point in range(1, n_points + 1):
        province = ("AB", "SK", "MB", "ON")[point % 4]
        for year in years:
            label_index = int(rng.integers(len(classes)))
            for month in months:
                if rng.uniform() < missing_rate:
                    continue
                name = SampleName(point, year, month, province, classes[label_index])
                samples.append((name, synthetic_image(label_index, month, size, rng)))
    points = pd.DataFrame({"point_id": [n.point_id for n, _ in samples],
                           "year": [n.year for n, _ in samples], "label": [n.label for n, _ in samples]})
    splits = make_splits(points.drop_duplicates(), SplitConfig(), seed)
    for name, image in samples:
        yield name, splits.split_of(name.point_id), image


def write_png_tree(
    root: str | Path,
    samples: Sequence[tuple[SampleName, str, np.ndarray]],
    image_types: Sequence[str] = ("RGB", "NDVI"),
) -> Path:
    """Write ``{year}/{TYPE}/{split}/{CLASS}/POINT_..._{TYPE}.png`` and ``splits.json``."""
    root = Path(root)
    for name, split, image in samples:
        valid = np.ones((1, *image.shape[1:]), np.float32)
        write_pngs_of(np.concatenate([image, valid]), name, root, split, RenderConfig(), image_types)
    write_splits(root, {name.point_id: split for name, split, _ in samples})
    return root


def write_splits(root: str | Path, assignments: dict[int, str], seed: int = 0) -> Path:
    """``splits.json`` in the documented format (checksummed, as :mod:`cropland.dataset` reads it)."""
    fractions = {"training": 0.7, "validation": 0.15, "test": 0.15}
    return dataset.write_splits(dataset.Splits(assignments, seed, fractions), dataset.DatasetFolder(root).splits_path)
