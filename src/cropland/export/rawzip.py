"""The raw per-sample zip: one single-band GeoTIFF per band, as in the raw release.

``NAME.zip`` holds ``NAME.B1.tif ... NAME.B12.tif``, ``NAME.NDVI.tif ... NAME.NDWI.tif`` and
``NAME.VALID.tif``: float32, nodata NaN, the sample's CRS, transform and tags (plus a
``BAND`` tag). The GeoTIFFs are stored uncompressed (the most portable form); the zip
deflates them. Members carry a fixed date, so the same sample always gives the same zip.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import rasterio
from rasterio.io import MemoryFile

from cropland.export.geotiff import SAMPLE_BANDS, SampleData, load_sample
from cropland.io import atomic_path

#: zlib level of the zip members: level 1 is much faster than 6 and barely larger on floats.
ZIP_LEVEL = 1
#: Every member's date (the zip format's earliest): the same sample gives the same bytes.
MEMBER_DATE = (1980, 1, 1, 0, 0, 0)


def band_member_names(stem: str) -> list[str]:
    """Member names of a raw zip, in band order: ``NAME.B1.tif`` ... ``NAME.VALID.tif``."""
    return [f"{stem}.{band}.tif" for band in SAMPLE_BANDS]


def write_raw_zip(tif_path: str | Path, zip_path: str | Path) -> Path:
    """Split a sample GeoTIFF into single-band GeoTIFFs inside a zip, atomically."""
    tif_path = Path(tif_path)
    return write_raw_zip_of(load_sample(tif_path), tif_path.stem, zip_path)


def write_raw_zip_of(sample: SampleData, stem: str, zip_path: str | Path) -> Path:
    """:func:`write_raw_zip` for a sample already in memory; ``stem`` names the members."""
    profile = {
        "driver": "GTiff",
        "height": sample.data.shape[1],
        "width": sample.data.shape[2],
        "count": 1,
        "dtype": "float32",
        "nodata": float("nan"),
        "crs": sample.crs,
        "transform": sample.transform,
    }
    members = band_member_names(stem)
    with (
        rasterio.Env(),  # one GDAL environment for the 19 in-memory files
        atomic_path(zip_path) as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf,
    ):
        for band, (name, member) in enumerate(zip(SAMPLE_BANDS, members, strict=True)):
            with MemoryFile() as mem:
                with mem.open(**profile) as dst:
                    dst.write(sample.data[band], 1)
                    dst.set_band_description(1, name)
                    dst.update_tags(**sample.tags, BAND=name)
                info = zipfile.ZipInfo(member, date_time=MEMBER_DATE)
                info.external_attr = 0o644 << 16  # rw-r--r--, not the writer's umask
                zf.writestr(info, mem.read(), compress_type=zipfile.ZIP_DEFLATED,
                            compresslevel=ZIP_LEVEL)
    return Path(zip_path)
