"""The sample GeoTIFF: 12 reflectance bands, 6 indices and a VALID band (docs/format.md).

19 float32 bands, nodata NaN, band descriptions set, provenance in dataset tags, tiled,
DEFLATE with the floating-point predictor, written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError

import cropland
from cropland.config import IndicesConfig
from cropland.core.bands import BAND_NAMES
from cropland.core.composite import Composite
from cropland.core.indices import INDEX_NAMES, compute_indices
from cropland.errors import DatasetError
from cropland.io import atomic_path

#: Band descriptions of the sample GeoTIFF, in band order (band 1 first).
SAMPLE_BANDS: tuple[str, ...] = (*BAND_NAMES, *INDEX_NAMES, "VALID")
#: Dataset tags every sample GeoTIFF carries.
TAG_NAMES: tuple[str, ...] = (
    "POINT_ID", "YEAR", "MONTH", "PROVINCE", "LABEL", "ACI_CODE", "SCENES", "N_SCENES",
    "CLOUD_FRACTION", "NODATA_FRACTION", "NEGATIVE_FRACTION", "ABOVE_ONE_FRACTION", "SYNTHETIC",
    "SOURCE", "DN_OFFSETS", "INDEX_VARIANT", "NDWI", "CROPLAND_VERSION",
)
BLOCK_SIZE = 64


def sample_array(composite: Composite, indices: IndicesConfig) -> np.ndarray:
    """The 19-band float32 stack of a composite: reflectance, indices, VALID."""
    reflectance = np.asarray(composite.reflectance, dtype=np.float32)
    index_stack = compute_indices(reflectance, variant=indices.variant, ndwi=indices.ndwi)
    valid = np.asarray(composite.valid, dtype=np.float32)[None]
    return np.concatenate([reflectance, index_stack, valid]).astype(np.float32, copy=False)


def sample_tags(composite: Composite, indices: IndicesConfig, source: dict[str, Any]) -> dict:
    """The dataset tags of a sample GeoTIFF (all values are strings)."""
    s = composite.sample
    return {
        "POINT_ID": str(s.point_id),
        "YEAR": str(s.year),
        "MONTH": str(s.month),
        "PROVINCE": s.province,
        "LABEL": s.label,
        "ACI_CODE": str(composite.aci_code),
        "SCENES": ",".join(composite.scenes),
        "N_SCENES": str(len(composite.scenes)),
        "CLOUD_FRACTION": repr(float(composite.cloud_fraction)),
        "NODATA_FRACTION": repr(composite.nodata_fraction),
        "NEGATIVE_FRACTION": repr(composite.negative_fraction),
        "ABOVE_ONE_FRACTION": repr(composite.above_one_fraction),
        "SYNTHETIC": "yes" if composite.synthetic else "no",
        "SOURCE": json.dumps(source, sort_keys=True, default=str),
        "DN_OFFSETS": json.dumps(composite.dn_offsets, sort_keys=True),
        "INDEX_VARIANT": indices.variant,
        "NDWI": indices.ndwi,
        "CROPLAND_VERSION": cropland.__version__,
    }


def geotiff_profile(height: int, width: int, count: int) -> dict[str, Any]:
    """Creation options: float32, NaN nodata, DEFLATE + predictor 3, 64x64 tiles if they fit."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": "float32",
        "nodata": float("nan"),
        "compress": "deflate",
        "predictor": 3,
        "interleave": "band",
    }
    if min(height, width) >= BLOCK_SIZE:
        profile.update(tiled=True, blockxsize=BLOCK_SIZE, blockysize=BLOCK_SIZE)
    return profile


def write_sample(
    composite: Composite, path: str | Path, indices: IndicesConfig, source: dict[str, Any]
) -> Path:
    """Write a composite as the documented 19-band sample GeoTIFF, atomically.

    Args:
        composite: the month's median composite and its provenance.
        path: the target file (see :func:`cropland.dataset.tif_path`).
        indices: which index formulas to compute.
        source: provenance of the source (kind, level, options), stored as JSON.

    Returns:
        ``path``.
    """
    data = sample_array(composite, indices)
    grid = composite.grid
    if data.shape[1:] != grid.shape:
        raise ValueError(f"composite shape {data.shape[1:]} does not match grid {grid.shape}")
    profile = geotiff_profile(*grid.shape, len(SAMPLE_BANDS))
    with atomic_path(path) as tmp, rasterio.open(
        tmp, "w", crs=grid.rasterio_crs, transform=grid.transform, **profile
    ) as dst:
        dst.write(data)
        for band, name in enumerate(SAMPLE_BANDS, start=1):
            dst.set_band_description(band, name)
        dst.update_tags(**sample_tags(composite, indices, source))
    return Path(path)


@contextmanager
def open_sample(path: str | Path) -> Iterator[rasterio.DatasetReader]:
    """Open a sample GeoTIFF, checking its bands; errors name the file and the fix."""
    path = Path(path)
    hint = "delete it and run the build again to regenerate it"
    if not path.exists():
        raise DatasetError(f"sample GeoTIFF {path} does not exist")
    try:
        with rasterio.open(path) as src:
            if src.descriptions != SAMPLE_BANDS:
                raise DatasetError(
                    f"{path} is not a cropland sample GeoTIFF: bands {src.descriptions}, "
                    f"expected {', '.join(SAMPLE_BANDS)}; {hint}"
                )
            yield src
    except RasterioError as e:
        raise DatasetError(f"{path} is corrupt or incomplete ({e}); {hint}") from None


@dataclass(frozen=True)
class SampleData:
    """A sample GeoTIFF read into memory."""

    data: np.ndarray  # float32 (19, H, W), bands as SAMPLE_BANDS
    tags: dict[str, str]
    crs: CRS
    transform: Affine


def load_sample(path: str | Path) -> SampleData:
    """Read a sample GeoTIFF with its georeferencing."""
    with open_sample(path) as src:
        return SampleData(src.read(out_dtype="float32"), src.tags(), src.crs, src.transform)


def read_sample(path: str | Path) -> tuple[np.ndarray, dict[str, str]]:
    """Read a sample GeoTIFF: the float32 ``(19, H, W)`` array and its dataset tags."""
    sample = load_sample(path)
    return sample.data, sample.tags
