"""A static STAC catalogue of a release: ``stac/collection.json`` and one item per point and year.

Each item's geometry is the patch footprint (the ``size`` x ``size`` pixel square centred on
the point, in the dataset's CRS, given in WGS84), with the label extension for the class; its
assets link to the Parquet shards that hold its rows. Written with pystac as a self-contained
catalogue (relative links only).
"""

from __future__ import annotations

import calendar
import re
import shutil
import tempfile
import warnings
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

from cropland.core.grid import PatchGrid
from cropland.data.shards import VIEWS
from cropland.publish.shards import Shard, view_items
from cropland.publish.source import Source

if TYPE_CHECKING:
    import pystac

PARQUET = "application/vnd.apache.parquet"
LABEL_SCHEMA = "https://stac-extensions.github.io/label/v1.0.0/schema.json"
LABEL_DESCRIPTION = "Crop class of the field at the point in that year (AAFC Annual Crop Inventory)"


def _footprint(lon: float, lat: float, patch: tuple[int, float, str]) -> tuple[dict, list[float]]:
    from pyproj import Transformer

    size, resolution, crs = patch
    grid = PatchGrid.around(lon, lat, size=size, resolution=resolution, crs=crs)
    left, bottom, right, top = grid.bounds
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    corners = [to_lonlat.transform(x, y) for x, y in ((left, bottom), (right, bottom), (right, top), (left, top))]
    ring = [[round(x, 7), round(y, 7)] for x, y in corners]
    ring.append(ring[0])
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return {"type": "Polygon", "coordinates": [ring]}, [min(xs), min(ys), max(xs), max(ys)]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def write_catalogue(source: Source, shards: list[Shard], out: Path) -> Path:
    """Write ``out/stac`` (replacing an older one); return the collection's path."""
    import pystac

    with warnings.catch_warnings():  # pystac calls the extension "pilot"; it is the one for labels
        warnings.simplefilter("ignore", DeprecationWarning)
        from pystac.extensions.label import LabelClasses, LabelExtension, LabelType

    shard_of = _shard_of_rows(source, shards)
    items = []
    key = lambda i: (source.records[i].name.point_id, source.records[i].name.year)  # noqa: E731
    for (point, year), group in groupby(range(len(source.records)), key):
        indices = list(group)
        records = [source.records[i] for i in indices]
        first, meta = records[0], source.table.iloc[indices[0]]
        months = [r.name.month for r in records]
        start = datetime(year, months[0], 1, tzinfo=UTC)
        end = datetime(year, months[-1], calendar.monthrange(year, months[-1])[1], 23, 59, 59, tzinfo=UTC)
        has_point = meta["lon"] == meta["lon"] and meta["lon"] is not None  # not NaN / None
        geometry, bbox = _footprint(meta["lon"], meta["lat"], source.patch) if has_point else (None, None)
        item = pystac.Item(
            id=f"POINT_{point}_{year}", geometry=geometry, bbox=bbox, datetime=None,
            start_datetime=start, end_datetime=end,
            properties={
                "point_id": point, "year": year, "months": months, "province": first.name.province,
                "class_name": first.name.label, "label": source.classes.index(first.name.label),
                "split": first.split, "sample_ids": [r.name.stem for r in records],
            },
        )
        LabelExtension.ext(item, add_if_missing=True).apply(
            label_description=LABEL_DESCRIPTION, label_type=LabelType.VECTOR,
            label_properties=["class_name"],
            label_classes=[LabelClasses.create(classes=list(source.classes), name="class_name")],
            label_tasks=["classification"], label_methods=["automated"],
        )
        # the published label v1.0.1 schema still requires the v1.0.0 URI: declare that one
        item.stac_extensions = [LABEL_SCHEMA if "/label/" in u else u for u in item.stac_extensions]
        for view in VIEWS:
            rows = indices if view == "static" else indices[:1]
            held = dict.fromkeys(shard_of[(view, i)] for i in rows if (view, i) in shard_of)
            for n, shard in enumerate(held):
                item.add_asset(view if n == 0 else f"{view}-{n + 1}", pystac.Asset(
                    href=f"../../{shard.path}", media_type=PARQUET, roles=["data"],
                    title=f"{shard.view} rows (Parquet shard)",
                ))
        items.append(item)
    collection = _collection(pystac, source, shards, items)
    stac = out / "stac"
    tmp = Path(tempfile.mkdtemp(prefix=".stac.", dir=out))
    try:
        for item in items:
            collection.add_item(item)
            item.set_self_href(str(tmp / "items" / f"{item.id}.json"))
        collection.set_self_href(str(tmp / "collection.json"))
        for item in items:  # assets are relative to the item's final place
            item.set_self_href(str(tmp / "items" / f"{item.id}.json"))
        collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
        if stac.exists():
            shutil.rmtree(stac)
        tmp.rename(stac)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stac / "collection.json"


def _shard_of_rows(source: Source, shards: list[Shard]) -> dict[tuple[str, int], Shard]:
    """(view, first record index of a row) -> the shard holding that row."""
    out = {}
    for view in dict.fromkeys(s.view for s in shards):
        for split in dict.fromkeys(s.split for s in shards):
            items = iter(view_items(source, view, split))
            for shard in (s for s in shards if (s.view, s.split) == (view, split)):
                for _ in range(shard.rows):
                    item = next(items)
                    out[(view, item if view == "static" else item[0])] = shard
    return out


def _collection(pystac, source: Source, shards: list[Shard], items: list) -> pystac.Collection:
    years = sorted({r.name.year for r in source.records})
    boxes = [i.bbox for i in items if i.bbox]
    bbox = (
        [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
        if boxes else [-141.0, 41.7, -52.6, 83.1]  # Canada
    )
    extent = pystac.Extent(
        pystac.SpatialExtent([bbox]),
        pystac.TemporalExtent([[datetime(years[0], 1, 1, tzinfo=UTC), datetime(years[-1], 12, 31, tzinfo=UTC)]]),
    )
    license_id = "MIT" if source.license["id"] == "mit" else "other"
    collection = pystac.Collection(
        id=_slug(source.name), title=source.name, extent=extent, license=license_id,
        description=f"{source.name}: Sentinel-2 patches of Canadian fields with crop labels, one item "
        "per point and year; the pixels are in the Parquet shards linked from each item.",
        keywords=["Sentinel-2", "agriculture", "crop classification", "Canada"],
        summaries=pystac.Summaries({"class_name": list(source.classes), "year": years}),
    )
    collection.add_link(pystac.Link("license", source.license["url"], title=source.license["name"]))
    collection.add_link(pystac.Link("describedby", "../croissant.json", media_type="application/ld+json",
                                    title="Croissant metadata"))
    for shard in shards:
        collection.add_asset(shard.path.removeprefix("data/").replace("/", "-").removesuffix(".parquet"),
                             pystac.Asset(href=f"../{shard.path}", media_type=PARQUET, roles=["data"]))
    return collection
