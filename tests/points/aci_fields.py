"""ACI rasters with known fields of known classes, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

SHARED_DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
ORIGINAL_CSV = SHARED_DATA / "points_ALL_categories_2019.csv"

# 30 m pixels in EPSG:3978, west of Brandon, Manitoba (about -100.5, 50.2).
ORIGIN = (-390450.0, 150060.0)
RES = 30.0
SHAPE = (120, 160)

GRASS, CORN, SOYBEAN, CANOLA, BARLEY, OAT = 110, 147, 158, 153, 133, 136


def field_layout(year: int = 2019) -> np.ndarray:
    """The class codes of the test raster (rows x cols).

    - background grassland (110), not a sampled class;
    - CORN rows 10-49 x cols 10-59: a pure 40 x 50 field;
    - SOYBEAN rows 60-99 x cols 10-39: a pure 40 x 30 field;
    - CANOLA rows 60-99 x cols 40-79 with a grass stripe every 8th column (12.5 % impure);
    - BARLEY rows 100-119 x cols 125-159: 20 rows, touching the bottom and right edges;
    - no data (0) rows 0-5 x cols 100-159 and a 4 x 4 hole in the corn at rows 28-31 x
      cols 50-53.
    In 2020 the corn field becomes OAT (a crop rotation).
    """
    a = np.full(SHAPE, GRASS, dtype=np.uint8)
    a[10:50, 10:60] = CORN if year == 2019 else OAT
    a[60:100, 10:40] = SOYBEAN
    a[60:100, 40:80] = CANOLA
    a[60:100, 40:80:8] = GRASS
    a[100:120, 125:160] = BARLEY
    a[0:6, 100:160] = 0
    a[28:32, 50:54] = 0
    return a


def write_aci(path: Path, data: np.ndarray, tiled: bool = True, block: int = 64) -> Path:
    """Write class codes as a tiled, compressed GeoTIFF in EPSG:3978 (nodata 0)."""
    profile = {
        "driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": "uint8", "crs": "EPSG:3978", "nodata": 0, "compress": "deflate",
        "transform": Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1]),
    }
    if tiled:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


