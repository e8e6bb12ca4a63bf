"""Yearly labels of points from the ACI: centre class, window majority, crop rotation.

For each point and year the window of ``window_m`` (640 m) around the point is read from
that year's ACI. The labels table has one row per point and year:

============== ======= =========================================================
column         dtype   meaning
============== ======= =========================================================
point_id       int64   the point
year           int64   the ACI year
centre_code    Int64   ACI class of the pixel holding the point (NA: no data)
majority_code  Int64   most frequent class of the window (no-data pixels ignored)
majority_share float64 its share of the whole window
valid_share    float64 share of the window with data
aci_code       Int64   the label chosen by the rule (NA: no label this year)
label          str     its class name ("" when no label)
changed        bool    the label differs from the point's previous labelled year
rotates        bool    the point has more than one label over the years
============== ======= =========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import Transformer
from rasterio.windows import Window

from cropland.core.classes import get_class, legend
from cropland.errors import PointsError
from cropland.points.aci import AciReader, resolution
from cropland.points.config import LabelRule, window_pixels
from cropland.points.sample import progress

log = logging.getLogger(__name__)

LABEL_COLUMNS = [
    "point_id", "year", "centre_code", "majority_code", "majority_share", "valid_share",
    "aci_code", "label", "changed", "rotates",
]


def window_stats(reader: AciReader, lon: npt.ArrayLike, lat: npt.ArrayLike, window_m: float
                 ) -> pd.DataFrame:
    """Centre class, majority class and shares of the window around each point.

    Points outside the raster get NA classes and a zero ``valid_share``.
    """
    n = window_pixels(window_m, resolution(reader))
    h = n // 2
    to_crs = Transformer.from_crs("EPSG:4326", reader.crs.to_wkt(), always_xy=True)
    x, y = to_crs.transform(np.asarray(lon, float), np.asarray(lat, float))
    t = reader.transform  # north-up (checked when the reader opened)
    cols = np.floor((np.asarray(x) - t.c) / t.a).astype(np.int64)
    rows = np.floor((np.asarray(y) - t.f) / t.e).astype(np.int64)
    stats = []
    for r, c in progress(zip(rows, cols, strict=True), len(rows), f"labelling {reader.year}"):
        if not (-h <= r < reader.height + h and -h <= c < reader.width + h):
            stats.append((pd.NA, pd.NA, 0.0, 0.0))
            continue
        stats.append(_stats(reader.read(Window(c - h, r - h, n, n)), reader.nodata))
    return pd.DataFrame(stats, columns=["centre_code", "majority_code", "majority_share",
                                        "valid_share"]).astype(
        {"centre_code": "Int64", "majority_code": "Int64"})


def _stats(window: np.ndarray, nodata: int) -> tuple:
    h = window.shape[0] // 2
    centre = window[h, h]
    values = window[window != nodata]
    if values.size == 0:
        return (pd.NA, pd.NA, 0.0, 0.0)
    codes, counts = np.unique(values, return_counts=True)
    best = int(np.argmax(counts))  # ties: the smallest code
    return (
        pd.NA if centre == nodata else int(centre),
        int(codes[best]),
        counts[best] / window.size,
        values.size / window.size,
    )


def apply_rule(stats: pd.DataFrame, rule: LabelRule) -> pd.Series:
    """The label code of each row of :func:`window_stats` under ``rule`` (NA: none)."""
    known = set(legend())
    centre, majority = stats["centre_code"], stats["majority_code"]
    strong = stats["majority_share"] >= rule.min_share
    if rule.rule == "centre":
        code = centre
    elif rule.rule == "majority":
        code = majority.where(strong)
    else:  # agree
        code = centre.where(strong & (centre == majority).fillna(False))
    return code.where(code.isin(known)).astype("Int64")


def label_points(
    points: pd.DataFrame,
    readers: Mapping[int, Sequence[AciReader]],
    rule: LabelRule | None = None,
) -> pd.DataFrame:
    """The labels table of every point (``point_id, lon, lat``) for every year of ``readers``.

    With several rasters for a year (one per province), a point takes the raster where its
    window has the most data.
    """
    rule = rule or LabelRule()
    per_point = points.drop_duplicates("point_id")[["point_id", "lon", "lat"]]
    per_point = per_point.reset_index(drop=True)
    years = []
    for year, year_readers in sorted(readers.items()):
        best = None
        for reader in year_readers:
            stats = window_stats(reader, per_point["lon"], per_point["lat"], rule.window_m)
            best = stats if best is None else best.where(
                best["valid_share"] >= stats["valid_share"], stats)
        if best is None:
            raise PointsError(f"{year}: no ACI raster to label the points with")
        best = best.astype({"centre_code": "Int64", "majority_code": "Int64"})
        years.append(best.assign(point_id=per_point["point_id"], year=year))
    labels = pd.concat(years, ignore_index=True)
    labels["aci_code"] = apply_rule(labels, rule)
    labels["label"] = [get_class(int(c)).name if pd.notna(c) else "" for c in labels["aci_code"]]
    return rotation_flags(labels)[LABEL_COLUMNS]


def rotation_flags(labels: pd.DataFrame) -> pd.DataFrame:
    """Add ``changed`` (label differs from the previous labelled year) and ``rotates``."""
    labels = labels.sort_values(["point_id", "year"], ignore_index=True)
    labelled = labels[labels["aci_code"].notna()]
    previous = labelled.groupby("point_id")["aci_code"].shift()
    changed = (previous.notna() & (previous != labelled["aci_code"])).astype(bool)
    labels["changed"] = changed.reindex(labels.index, fill_value=False).astype(bool)
    n_labels = labelled.groupby("point_id")["aci_code"].nunique()
    labels["rotates"] = labels["point_id"].map(n_labels).fillna(0).gt(1)
    return labels


def to_points_table(labels: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """Points-table rows (one per labelled point and year), positions from ``points``."""
    where = points.drop_duplicates("point_id")[["point_id", "lon", "lat", "province"]]
    rows = labels[labels["aci_code"].notna()].merge(where, on="point_id", how="left")
    return rows.assign(aci_code=rows["aci_code"].astype("int64"))[
        ["point_id", "year", "lon", "lat", "province", "aci_code", "label"]
    ]
