"""PNG rendering of samples: RGB from B4/B3/B2 and each index in 3 channels.

Values are scaled, rounded and clipped to 0-255 before the cast to uint8, so bright pixels
and negative indices saturate instead of wrapping around (the original conversion's bug).
NaN (no clear observation) renders as 0. See ``docs/format.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from cropland.config import RenderConfig
from cropland.core.bands import RGB_BANDS
from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.dataset import png_path
from cropland.export.geotiff import SAMPLE_BANDS, load_sample
from cropland.io import atomic_path

#: zlib level of the PNGs: on 64 x 64 patches level 3 is as small as 6 and a third faster.
PNG_COMPRESS_LEVEL = 3


def to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``lo..hi`` linearly to 0..255, rounded and clipped; NaN becomes 0."""
    scaled = (np.asarray(values, dtype=np.float64) - lo) * (255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def render_rgb(rgb: np.ndarray, rgb_max: float) -> np.ndarray:
    """``(3, H, W)`` red/green/blue reflectance -> ``(H, W, 3)`` uint8 (0..rgb_max -> 0..255)."""
    return np.moveaxis(to_uint8(rgb, 0.0, rgb_max), 0, -1)


def render_index(index: np.ndarray, index_range: tuple[float, float]) -> np.ndarray:
    """``(H, W)`` index values -> ``(H, W, 3)`` uint8, the same grey in the 3 channels."""
    grey = to_uint8(index, *index_range)
    return np.repeat(grey[..., None], 3, axis=-1)


def render_type(sample: np.ndarray, image_type: str, render: RenderConfig) -> np.ndarray:
    """Render one image type (``RGB`` or an index name) of a 19-band sample array."""
    if image_type == "RGB":
        rgb = sample[[SAMPLE_BANDS.index(b) for b in RGB_BANDS]]
        return render_rgb(rgb, render.rgb_max)
    if image_type not in IMAGE_TYPES:
        raise ValueError(f"unknown image type {image_type!r}; use one of {IMAGE_TYPES}")
    return render_index(sample[SAMPLE_BANDS.index(image_type)], render.index_range)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a ``(H, W, 3)`` uint8 image as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return Path(path)


def write_pngs(
    tif_path: str | Path,
    release_root: str | Path,
    split: str,
    render: RenderConfig,
    image_types: Iterable[str] = IMAGE_TYPES,
) -> list[Path]:
    """Render a sample GeoTIFF to the published PNG tree.

    Args:
        tif_path: the sample GeoTIFF.
        release_root: the dataset folder ``OUT``.
        split: ``training``, ``validation`` or ``test``: the split of the sample's point.
        render: the rendering ranges.
        image_types: which PNGs to write (default: RGB and the six indices).

    Returns:
        The written paths, ``OUT/{year}/{TYPE}/{split}/{CLASS}/NAME_{TYPE}.png``.
    """
    sample, _ = SampleName.parse(Path(tif_path).name)
    return write_pngs_of(load_sample(tif_path).data, sample, release_root, split, render,
                         image_types)


def write_pngs_of(
    data: np.ndarray,
    sample: SampleName,
    release_root: str | Path,
    split: str,
    render: RenderConfig,
    image_types: Iterable[str] = IMAGE_TYPES,
) -> list[Path]:
    """:func:`write_pngs` for a sample array already in memory."""
    return [
        save_png(render_type(data, t, render), png_path(release_root, sample, t, split))
        for t in image_types
    ]
