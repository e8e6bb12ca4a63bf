"""Sentinel-2 scenes on disk: a static STAC catalogue, SAFE products, or scene folders.

``path`` is either

* a STAC JSON file (catalog, collection or item collection): its items, with asset hrefs
  relative to the file or absolute, read like :class:`~cropland.sources.stac.StacSource`
  items (same band keys, masks and baseline offset rule);
* a Sentinel-2 product as distributed, a ``.SAFE`` folder or its zip (see
  :mod:`cropland.sources.safe`); or
* a folder of those products and of scene folders. A scene folder holds one GeoTIFF or
  JPEG 2000 file per band, named after the band (``B02.tif``, ``s2_B8A.jp2``,
  ``T13UCR_20230704T175919_B04_10m.jp2``, ``SCL.tif``, ``QA60.tif``,
  ``MSK_CLASSI_B00.jp2``). The acquisition time is the first ``YYYYMMDDTHHMMSS`` or
  ``YYYYMMDD`` in the folder name, unless an optional ``scene.json`` gives item properties
  (``datetime``, ``eo:cloud_cover``, ``s2:processing_baseline``,
  ``earthsearch:boa_offset_applied``); the cloud cover defaults to 0. Without a baseline, a
  scene acquired on 2022-01-25 or later is taken as baseline 04.00 (DN offset -1000, as ESA
  distributes them), with a warning: say otherwise in its ``scene.json``.

Products of the other processing level than the build's are skipped, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path

import rasterio
from pydantic import Field, field_validator
from rasterio.warp import transform_bounds

from cropland.errors import ConfigError
from cropland.sources.base import register_source
from cropland.sources.items import ItemOptions, ItemReader, is_remote
from cropland.sources.safe import is_product, layer_of, product_items

log = logging.getLogger(__name__)
_DATE = re.compile(r"(\d{8}T\d{6}|\d{8})")
#: First acquisitions processed with baseline 04.00, whose DN carry an offset of -1000.
BASELINE_04_START = datetime(2022, 1, 25)
BAND_SUFFIXES = ("*.tif", "*.tiff", "*.jp2")


class LocalOptions(ItemOptions):
    """Options of the local source."""

    path: Path = Field(description="STAC catalogue/collection JSON, a SAFE product (folder or "
                       "zip), or a folder of products and scene folders; relative to the "
                       "configuration file's folder.")

    @field_validator("path")
    @classmethod
    def _exists(cls, path: Path) -> Path:
        if not path.exists():
            raise ValueError(f"{path} does not exist (a relative path is taken from the "
                             "configuration file's folder)")
        return path


@register_source
class LocalSource(ItemReader):
    """Scenes from files on disk (see module docstring)."""

    kind = "local"
    Options = LocalOptions
    options: LocalOptions

    @cached_property
    def scenes(self) -> list:
        """Every readable scene under ``path`` (loaded once)."""
        path = Path(self.options.path)
        if is_product(path):
            items = product_items(path)
        elif path.is_file():
            items = _catalogue_items(path)
        else:
            items = _folder_items(path)
        other = [i["id"] for i in items
                 if i["properties"].get("processing:level", self.level) != self.level]
        if other:
            log.warning("%d products are not %s, skipped (%s, ...)", len(other), self.level,
                        other[0])
        return [s for item in items if item["id"] not in other
                and (s := self.scene_of(item)) is not None]

    def fingerprint(self) -> str:
        """A digest of the scenes and their files (name, size, modification time)."""
        digest = hashlib.sha256()
        for s in self.scenes:
            files = sorted({_file_of(h) for h in s.properties["assets"].values()
                            if not is_remote(h) and not h.startswith("/vsimem/")})
            digest.update(json.dumps([s.id, s.datetime.isoformat(), s.cloud_cover, s.offset,
                                      s.properties["assets"],
                                      [(f, *_stat(f)) for f in files]]).encode())
        return digest.hexdigest()

    def scenes_over(self, bbox, start, end, max_cloud):
        west, south, east, north = bbox
        return [s for s in self.scenes
                if not (s.bbox[2] < west or s.bbox[0] > east or s.bbox[3] < south or s.bbox[1] > north)]


def _catalogue_items(path: Path) -> list[dict]:
    import pystac

    obj = pystac.read_file(str(path))
    if isinstance(obj, pystac.ItemCollection):
        items = list(obj)
    elif isinstance(obj, pystac.Catalog):
        items = list(obj.get_items(recursive=True))
    else:
        raise ConfigError(f"source.options.path: {path} is not a STAC catalogue, collection "
                          "or item collection")
    for item in items:
        item.make_asset_hrefs_absolute()
    return [item.to_dict(transform_hrefs=False) for item in items]


def _file_of(href: str) -> str:
    """The file on disk behind a local href (a zip for ``/vsizip/`` members)."""
    if href.startswith("/vsizip/"):
        return href.removeprefix("/vsizip/").split(".zip/", 1)[0] + ".zip"
    return href.removeprefix("file://")


def _stat(path: str) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def _folder_items(root: Path) -> list[dict]:
    items, assumed = [], []
    for entry in sorted(root.iterdir()):
        if is_product(entry):
            items += product_items(entry)
        elif entry.is_dir() and (item := _folder_item(entry)) is not None:
            items.append(item)
            if item["properties"].get("cropland:baseline_assumed"):
                assumed.append(item["id"])
    if not items:
        raise ConfigError(f"source.options.path: no SAFE products (.SAFE folders or zips) and no "
                          f"scene folders with band files (.tif, .jp2) in {root}")
    if assumed:
        log.warning("%d scene folders acquired from %s on have no processing baseline (%s, ...): "
                    "taken as baseline 04.00, DN offset -1000; if their DN are already "
                    "harmonised, write {\"earthsearch:boa_offset_applied\": true} in their "
                    "scene.json", len(assumed), BASELINE_04_START.date(), assumed[0])
    return items


def _folder_item(folder: Path) -> dict | None:
    layers: dict[str, tuple[int, Path]] = {}
    for f in sorted(p for pattern in BAND_SUFFIXES for p in folder.glob(pattern)):
        if (layer := layer_of(f)) and (layer[0] not in layers or layer[1] < layers[layer[0]][0]):
            layers[layer[0]] = (layer[1], f)
    assets = {name: {"href": str(f.resolve())} for name, (_, f) in layers.items()}
    if not assets:
        return None
    meta = folder / "scene.json"
    try:
        props = json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {}
    except json.JSONDecodeError as e:
        raise ConfigError(f"{meta} is not valid JSON ({e}); fix or remove it") from None
    if "datetime" not in props:
        if not (m := _DATE.search(folder.name)):
            log.warning("%s: no date in the folder name and no scene.json; skipped", folder)
            return None
        fmt = "%Y%m%dT%H%M%S" if "T" in m.group(1) else "%Y%m%d"
        props["datetime"] = datetime.strptime(m.group(1), fmt).isoformat() + "Z"
    harmonised = ("s2:processing_baseline", "earthsearch:boa_offset_applied")
    if not any(k in props for k in harmonised) and \
            datetime.fromisoformat(props["datetime"]).replace(tzinfo=None) >= BASELINE_04_START:
        props |= {"s2:processing_baseline": "04.00", "cropland:baseline_assumed": True}
    with rasterio.open(next(iter(assets.values()))["href"]) as src:
        bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    return {"id": folder.name, "bbox": list(bbox), "properties": props, "assets": assets}
