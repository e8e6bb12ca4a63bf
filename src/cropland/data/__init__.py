"""Loading: readers (our GeoTIFFs, the published PNG tree, packed arrays), datasets, packing.

Nothing here needs GDAL except :class:`GeoTiffReader`, which imports rasterio when created.
"""

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
    "open_reader",
    "resolve_channels",
]
