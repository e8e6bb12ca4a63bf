"""Cloud masks of Level-1C products before baseline 04.00: vector GML, rasterised as QA60.

``GRANULE/*/QI_DATA/MSK_CLOUDS_B00.gml`` is an ``eop:Mask`` of ``eop:MaskFeature``s, each an
``eop:maskType`` (``OPAQUE`` or ``CIRRUS``; other types are left out) and a ``gml:Polygon``
whose ``gml:exterior`` and ``gml:interior`` rings are ``gml:LinearRing/gml:posList`` in the
tile's CRS (``srsName``, such as ``urn:ogc:def:crs:EPSG:8.7:32631``; the band files' CRS where
the file names none). A mask without features means no cloud.

:func:`qa60_from_gml` burns the polygons onto the granule's 60 m grid (a pixel is inside when
its centre is) as QA60 bits (:data:`~cropland.sources.masks.QA60_BITS`: 10 opaque, 11 cirrus)
and keeps them as a GeoTIFF in :func:`mask_cache`, written atomically and named by a digest of
the GML and the grid: a rebuild reads it back, a changed GML gets a new file, and the folder
can be emptied at any time. Where that folder cannot be written, the GeoTIFF is kept in GDAL's
memory (``/vsimem/``) for the process, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import cache
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from cropland.errors import SourceError
from cropland.io import atomic_path
from cropland.sources.masks import QA60_BITS

log = logging.getLogger(__name__)

GML_MASK = "MSK_CLOUDS_B00.gml"
#: The QA60 bit of each mask type.
MASK_BITS: dict[str, int] = dict(zip(("OPAQUE", "CIRRUS"), QA60_BITS, strict=True))
RESOLUTION = 60.0
_FORMAT = 1  # part of each file's digest: raise it when the rasterised files change meaning

Grid = tuple[CRS, Affine, tuple[int, int]]
Polygons = dict[str, list[dict]]


def mask_cache() -> Path:
    """The folder of rasterised masks: ``$XDG_CACHE_HOME/cropland/masks`` (``~/.cache/...``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cropland" / "masks"


def qa60_from_gml(data: bytes, assets: dict[str, dict], where: str) -> str:
    """The path of the QA60 GeoTIFF of a GML cloud mask (``data``) on the 60 m grid of the
    granule's band files (``B1``, else the first of ``assets``), rasterised once (see the
    module docstring); ``where`` names the GML in errors."""
    grid = grid60(assets.get("B1", next(iter(assets.values())))["href"])
    crs, affine, shape = grid
    digest = hashlib.sha256(data)
    digest.update(repr((_FORMAT, crs.to_wkt(), tuple(affine), shape)).encode())
    path = mask_cache() / f"{digest.hexdigest()[:32]}.tif"
    if path.exists():
        return str(path)
    qa60 = rasterise(*parse_gml(data, where), grid)
    try:
        with atomic_path(path) as tmp:
            _write(tmp, qa60, grid)
    except OSError as e:
        _unwritable(str(path.parent), e.strerror or str(e))
        memory = f"/vsimem/cropland/masks/{path.name}"
        _write(memory, qa60, grid)
        return memory
    return str(path)


def grid60(href: str) -> Grid:
    """CRS, transform and shape of the 60 m grid over a band file (north up)."""
    with rasterio.open(href) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    shape = (round((top - bottom) / RESOLUTION), round((right - left) / RESOLUTION))
    return crs, Affine(RESOLUTION, 0, left, 0, -RESOLUTION, top), shape


def parse_gml(data: bytes, where: str) -> tuple[CRS | None, Polygons]:
    """The CRS (None if the file names none) and the GeoJSON polygons of each mask type of
    :data:`MASK_BITS` in a GML cloud mask; a SourceError naming ``where`` if it is not one."""
    try:
        root = ElementTree.fromstring(data)
        if _local(root.tag) != "Mask":
            raise ValueError(f"its root element is {_local(root.tag)}, not eop:Mask")
        srs = next((e.get("srsName") for e in root.iter() if e.get("srsName")), None)
        crs = _crs(srs) if srs else None
        polygons: Polygons = {kind: [] for kind in MASK_BITS}
        for feature in _named(root, "MaskFeature"):
            kind = next(((e.text or "").strip() for e in _named(feature, "maskType")), None)
            if kind in polygons:
                if not (found := _named(feature, "Polygon")):
                    raise ValueError(f"a {kind} feature has no gml:Polygon")
                polygons[kind] += [_polygon(p) for p in found]
    except (ElementTree.ParseError, ValueError) as e:
        raise SourceError(f"{where} is not a readable cloud mask GML ({e})") from None
    return crs, polygons


def rasterise(crs: CRS | None, polygons: Polygons, grid: Grid) -> np.ndarray:
    """QA60 bits (uint16) on ``grid``: a pixel carries a type's bit when its centre lies in
    one of its polygons (given in ``crs``, the grid's if None)."""
    grid_crs, affine, shape = grid
    qa60 = np.zeros(shape, np.uint16)
    for kind, shapes in polygons.items():
        if shapes and crs is not None and crs != grid_crs:
            shapes = [transform_geom(crs, grid_crs, s) for s in shapes]
        if shapes:
            burnt = rasterize(shapes, out_shape=shape, transform=affine, dtype="uint8")
            qa60 |= burnt.astype(np.uint16) << MASK_BITS[kind]
    return qa60


def _crs(srs_name: str) -> CRS:
    try:
        return CRS.from_user_input(srs_name)
    except CRSError:
        raise ValueError(f"srsName {srs_name} is not a known CRS") from None


def _polygon(polygon: ElementTree.Element) -> dict:
    exterior = _named(polygon, "exterior")
    if len(exterior) != 1:
        raise ValueError(f"a gml:Polygon has {len(exterior)} gml:exterior rings, not 1")
    rings = exterior + _named(polygon, "interior")
    return {"type": "Polygon", "coordinates": [_ring(r) for r in rings]}


def _ring(ring: ElementTree.Element) -> list[tuple[float, float]]:
    """The (x, y) points of a ring's ``gml:posList`` (of ``srsDimension`` values each)."""
    if not (found := _named(ring, "posList")):
        raise ValueError("a ring has no gml:posList")
    values = [float(v) for v in (found[0].text or "").split()]
    dim = int(found[0].get("srsDimension") or 2)
    if dim < 2 or len(values) % dim or len(values) < 4 * dim:
        raise ValueError(f"a gml:posList of {len(values)} values is not a ring of {dim}-D points")
    return [(values[i], values[i + 1]) for i in range(0, len(values), dim)]


def _write(path: str | Path, qa60: np.ndarray, grid: Grid) -> None:
    crs, affine, (height, width) = grid
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="uint16", crs=crs, transform=affine, compress="deflate") as dst:
        dst.write(qa60, 1)


@cache  # once per folder and reason
def _unwritable(folder: str, reason: str) -> None:
    log.warning("cannot keep rasterised GML cloud masks in %s (%s): they are kept in memory and "
                "made again by each process", folder, reason)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _named(root: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    """Elements of a local name below ``root`` (any namespace)."""
    return [e for e in root.iter() if e is not root and _local(e.tag) == name]
