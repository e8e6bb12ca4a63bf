"""Sentinel-2 scenes on disk: a static STAC catalogue, or a folder of GeoTIFF/COG files.

``path`` is either

* a STAC JSON file (catalog, collection or item collection): its items, with asset hrefs
  relative to the file or absolute, read like :class:`~cropland.sources.stac.StacSource`
  items (same band keys, masks and baseline offset rule); or
* a folder with one sub-folder per scene holding one GeoTIFF per band, named after the
  band (``B02.tif``, ``s2_B8A.tif``, ``SCL.tif``, ``QA60.tif``). The acquisition time is the
  first ``YYYYMMDDTHHMMSS`` or ``YYYYMMDD`` in the folder name, unless an optional
  ``scene.json`` gives item properties (``datetime``, ``eo:cloud_cover``,
  ``s2:processing_baseline``); the cloud cover defaults to 0.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path

import rasterio
from pydantic import Field
from rasterio.warp import transform_bounds

from cropland.core.bands import normalise_band_name
from cropland.errors import ConfigError
from cropland.sources.base import register_source
from cropland.sources.items import ItemOptions, ItemReader

log = logging.getLogger(__name__)
_BAND_FILE = re.compile(r"(B\d{1,2}A?|SCL|QA60|CLOUD_PROB)$", re.IGNORECASE)
_DATE = re.compile(r"(\d{8}T\d{6}|\d{8})")


class LocalOptions(ItemOptions):
    """Options of the local source."""

    path: Path = Field(description="STAC catalogue/collection JSON, or a folder of scene folders.")


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
        if not path.exists():
            raise ConfigError(f"source.options.path: {path} does not exist")
        items = _catalogue_items(path) if path.is_file() else _folder_items(path)
        return [s for item in items if (s := self.scene_of(item)) is not None]

    def search(self, bbox, start, end, max_cloud):
        west, south, east, north = bbox
        hits = [s for s in self.scenes
                if not (s.bbox[2] < west or s.bbox[0] > east or s.bbox[3] < south or s.bbox[1] > north)
                and self.keep(s, start, end, max_cloud)]
        return sorted(hits, key=lambda s: (s.datetime, s.id))


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


def _folder_items(root: Path) -> list[dict]:
    items = [item for folder in sorted(p for p in root.iterdir() if p.is_dir())
             if (item := _folder_item(folder)) is not None]
    if not items:
        raise ConfigError(f"source.options.path: no scene folders with band GeoTIFFs in {root}")
    return items


def _folder_item(folder: Path) -> dict | None:
    assets = {}
    for f in sorted(folder.glob("*.tif*")):
        if m := _BAND_FILE.search(f.stem.split("_")[-1]):
            assets[normalise_band_name(m.group(1))] = {"href": str(f.resolve())}
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
    with rasterio.open(next(iter(assets.values()))["href"]) as src:
        bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    return {"id": folder.name, "bbox": list(bbox), "properties": props, "assets": assets}
