"""Sentinel-2 products as ESA distributes them: ``.SAFE`` folders, or their zips.

A product holds its granule's bands as JPEG 2000 files under ``GRANULE/*/IMG_DATA`` (Level-2A:
in ``R10m``, ``R20m``, ``R60m``; each band is taken at its finest resolution), listed by the
product metadata file (``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``), which also gives

* the acquisition time (``PRODUCT_START_TIME``), the processing baseline
  (``PROCESSING_BASELINE``) and the cloud cover (``Cloud_Coverage_Assessment``, %);
* the DN scale (``QUANTIFICATION_VALUE``, ``BOA_QUANTIFICATION_VALUE``: 10000) and, from
  baseline 04.00 on, the DN offset of each band (``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET``,
  -1000), put on each band asset as ``raster:bands`` offset and scale, as STAC catalogues do.

The cloud mask is the Level-2A ``SCL`` (``IMG_DATA/R20m``) or, for Level-1C products of
baseline 04.00 on, ``QI_DATA/MSK_CLASSI_B00.jp2``; earlier Level-1C products have a vector
mask, ``QI_DATA/MSK_CLOUDS_B00.gml``, rasterised once onto the granule's 60 m grid as a
``QA60`` layer kept in a cache folder (:mod:`cropland.sources.gmlmask`). A zipped product is
read in place through GDAL's ``/vsizip/``, without unpacking.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

import rasterio
from rasterio.warp import transform_bounds

from cropland.core.bands import REFLECTANCE_SCALE, normalise_band_name
from cropland.errors import SourceError
from cropland.sources.gmlmask import GML_MASK, qa60_from_gml

log = logging.getLogger(__name__)

#: ``band_id`` of the product metadata: the index of a band in this order.
SAFE_BAND_IDS: tuple[str, ...] = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9",
                                  "B10", "B11", "B12")
_LAYER = re.compile(r"(?:^|_)(B\d{1,2}A?|SCL|QA60|CLOUD_PROB|MSK_CLASSI)(?:_B00)?(?:_(\d{2})m)?$",
                    re.IGNORECASE)
_METADATA = re.compile(r"(^|/)(MTD_MSIL(1C|2A)|[^/]*_MTD_SAFL(1C|2A)_[^/]*)\.xml$")


def layer_of(path: str | PurePosixPath | Path) -> tuple[str, int] | None:
    """The layer a file holds by its name (``T13UCR_..._B8A_20m.jp2`` -> ``("B8A", 20)``), with
    its resolution in the name (0 if none), or None for other files (``TCI``, ``AOT``...)."""
    m = _LAYER.search(PurePosixPath(str(path)).stem)
    if not m:
        return None
    return normalise_band_name(m.group(1)), int(m.group(2) or 0)


def is_product(path: Path) -> bool:
    """Whether ``path`` looks like a SAFE product: a ``.SAFE`` folder or a zip."""
    return path.suffix.upper() == ".SAFE" and path.is_dir() or path.suffix.lower() == ".zip"


def product_items(path: Path) -> list[dict]:
    """The STAC-shaped items of a product (one per granule), asset hrefs GDAL can open."""
    files = _Product(path)
    meta = files.metadata()
    root = _parse(files.read(meta), path)
    info = _product_info(root, f"{path}: {meta}")
    base = str(PurePosixPath(meta).parent)
    granules: dict[str, dict[str, tuple[int, str]]] = {}
    for image in _texts(root, "IMAGE_FILE"):
        member = f"{base}/{image}.jp2".removeprefix("./")
        granule = PurePosixPath(image).parts[1] if image.startswith("GRANULE/") else ""
        if (layer := layer_of(member)) and layer[0] != "B10":
            name, res = layer
            known = granules.setdefault(granule, {}).get(name)
            if known is None or res < known[0]:
                granules[granule][name] = (res, member)
    if not granules:
        raise SourceError(f"{path}: {meta} lists no band file (IMAGE_FILE); is it a product "
                          "in the format of December 2016 or later?")
    items = []
    for granule, layers in sorted(granules.items()):
        assets: dict[str, dict[str, Any]] = {name: {"href": files.href(member)}
                                             for name, (_, member) in layers.items()}
        if mask := files.find(f"{base}/GRANULE/{granule}/QI_DATA/MSK_CLASSI_B00.jp2"):
            assets["MSK_CLASSI"] = {"href": files.href(mask)}
        elif info["properties"]["processing:level"] == "L1C" and \
                (gml := files.find(f"{base}/GRANULE/{granule}/QI_DATA/{GML_MASK}")):
            assets["QA60"] = {"href": qa60_from_gml(files.read(gml), assets, f"{path}: {gml}")}
        for band, asset in assets.items():
            if band in info["offsets"]:
                asset["raster:bands"] = [{"offset": info["offsets"][band] / REFLECTANCE_SCALE,
                                          "scale": 1 / REFLECTANCE_SCALE}]
        first = assets.get("B4", next(iter(assets.values())))["href"]
        with rasterio.open(first) as src:
            bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        name = info["id"] if len(granules) == 1 else f"{info['id']}_{granule}"
        items.append({"id": name, "bbox": list(bbox), "properties": info["properties"],
                      "assets": assets})
    return items


class _Product:
    """The files of a product, in a folder or a zip: names relative to the folder holding
    the ``.SAFE`` (zip members as they are), read and turned into GDAL paths."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        if path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as z:
                    self.names = z.namelist()
            except (zipfile.BadZipFile, OSError) as e:
                raise SourceError(f"{path} is not a readable zip ({e})") from None
        else:
            self.names = [p.relative_to(self.path.parent).as_posix()
                          for p in self.path.rglob("*") if p.is_file()]
        self._set = set(self.names)

    @property
    def zipped(self) -> bool:
        return self.path.suffix.lower() == ".zip"

    def metadata(self) -> str:
        found = sorted((n for n in self.names if _METADATA.search(n)), key=len)
        if not found:
            raise SourceError(f"{self.path}: no product metadata (MTD_MSIL1C.xml or "
                              "MTD_MSIL2A.xml); is it a Sentinel-2 SAFE product?")
        return found[0]

    def find(self, name: str) -> str | None:
        return name if name in self._set else None

    def read(self, name: str) -> bytes:
        if self.zipped:
            with zipfile.ZipFile(self.path) as z:
                return z.read(name)
        return (self.path.parent / name).read_bytes()

    def href(self, name: str) -> str:
        if self.zipped:
            return f"/vsizip/{self.path}/{name}"
        return str(self.path.parent / name)


def _parse(data: bytes, path: Path) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise SourceError(f"{path}: the product metadata is not valid XML ({e})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _elements(root: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    """Elements of a local name anywhere below ``root`` (namespaces differ between versions)."""
    return [e for e in root.iter() if _local(e.tag) == name]


def _texts(root: ElementTree.Element, name: str) -> list[str]:
    return [(e.text or "").strip() for e in _elements(root, name)]


def _product_info(root: ElementTree.Element, where: str) -> dict:
    """Id, STAC properties and per-band DN offsets from the product metadata."""
    def first(*names: str) -> str | None:
        for name in names:
            if found := _texts(root, name):
                return found[0]
        return None

    def one(*names: str) -> str:
        if (found := first(*names)) is None:
            raise SourceError(f"{where}: no {' or '.join(names)}")
        return found

    scale = float(one("QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE"))
    if scale != REFLECTANCE_SCALE:
        raise SourceError(f"{where}: DN scale (quantification value) {scale:g}, not "
                          f"{REFLECTANCE_SCALE:g}: not supported")
    offsets = {}
    for e in _elements(root, "RADIO_ADD_OFFSET") + _elements(root, "BOA_ADD_OFFSET"):
        if e.text is None:
            raise SourceError(f"{where}: {_local(e.tag)} of band_id {e.get('band_id')} has no value")
        offsets[SAFE_BAND_IDS[int(e.get("band_id", -1))]] = float(e.text)
    uri = first("PRODUCT_URI") or where
    product_type = one("PRODUCT_TYPE")
    properties = {
        "datetime": one("PRODUCT_START_TIME"),
        "eo:cloud_cover": float(one("Cloud_Coverage_Assessment")),
        "s2:processing_baseline": one("PROCESSING_BASELINE"),
        "s2:product_type": product_type,
        "processing:level": "L2A" if "2A" in product_type else "L1C",
    }
    return {"id": PurePosixPath(uri).name.removesuffix(".SAFE"), "properties": properties,
            "offsets": offsets}
