"""Loading: readers (our GeoTIFFs, the published PNG tree, packed arrays), datasets, packing.

Nothing here needs GDAL except :class:`GeoTiffReader`, which imports rasterio when created;
the datasets (``StaticDataset``, ``TemporalDataset``) import torch when first used, so the
readers serve machines without torch too.
"""

from typing import Any

from cropland.data.channels import TIF_CHANNELS, resolve_channels
from cropland.data.readers import (
    GeoTiffReader,
    PackedReader,
    PngTreeReader,
    Reader,
    SampleRecord,
    open_reader,
)

__all__ = [
    "TIF_CHANNELS",
    "GeoTiffReader",
    "PackedReader",
    "PngTreeReader",
    "Reader",
    "SampleRecord",
    "StaticDataset",
    "TemporalDataset",
    "open_reader",
    "resolve_channels",
]


def __getattr__(name: str) -> Any:
    if name in ("StaticDataset", "TemporalDataset"):
        from cropland.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'cropland.data' has no attribute {name!r}")
