"""The points table: canonical dtypes, and errors that name what to fix."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from cropland.errors import PointsError
from cropland.points.table import validate_points


def table(**changes) -> pd.DataFrame:
    rows = {"point_id": [2, 1], "year": [2019, 2019], "lon": [-106.4, -97.7],
            "lat": [52.3, 49.6], "province": ["SK", "MB"], "aci_code": [147, "146"]}
    return pd.DataFrame({**rows, **changes})


def test_labels_from_codes_and_sorted_rows():
    df = validate_points(table())
    assert df["point_id"].tolist() == [1, 2]
    assert df["label"].tolist() == ["SPRING_WHEAT", "CORN"]
    assert df["aci_code"].dtype == "int64"


@pytest.mark.parametrize(("column", "values", "message"), [
    ("aci_code", [147, float("nan")], "aci_code must be a whole number in every row; rows [1] hold [nan]"),
    ("lon", ["-106.4", "east"], "wrong type"),
    ("province", ["SK", "XX"], "unknown province codes in rows [1]"),
    ("point_id", [2, 4.5], "point_id must be a whole number in every row; rows [1] hold [4.5]"),
    ("point_id", [2, "1e0x"], "point_id must be a whole number in every row; rows [1] hold ['1e0x']"),
    ("point_id", [2, -1], "point ids outside 0-999999999 (9 digits at most) in rows [1]: renumber them"),
    ("point_id", [2, 1234567890], "point ids outside 0-999999999 (9 digits at most) in rows [1]"),
    ("point_id", [2, 10**30], "wrong type"),
    ("year", [2019, 2019.5], "year must be a whole number in every row; rows [1] hold [2019.5]"),
    ("lat", [52.3, 120.0], "impossible coordinates in rows [1]"),
])
def test_bad_values_raise_points_error(column, values, message):
    with pytest.raises(PointsError, match=re.escape(message)):
        validate_points(table(**{column: values}), "pts.csv")


def test_points_outside_canada_are_found():
    from cropland.points.table import outside_canada

    points = table(point_id=[1, 2], lon=[2.35, -106.4], lat=[48.85, 52.3])  # Paris, Saskatchewan
    points = pd.concat([points, table(point_id=[3, 4], lon=[0.0, 49.6], lat=[-90.0, -97.7])])
    assert outside_canada(points)["point_id"].tolist() == [1, 3, 4]  # + the South Pole, lat/lon swapped


def test_an_empty_table_is_refused():
    with pytest.raises(PointsError, match="pts.csv holds no points; add one row per point and year"):
        validate_points(table().iloc[:0], "pts.csv")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty; expected a CSV with the columns"),
    (b"point_id,year,lon,lat,province,aci_code\n", "holds no points"),
    (b"point_id,year,lon,lat,province,aci_code\n1,2019,-106.4,52.3,SK,147\n2,2019,-97.7,49.6,MB,146,7,8\n",
     "is not a well-formed CSV (Error tokenizing data. C error: Expected 6 fields in line 3, saw 8)"),
    (bytes(range(256)) * 4, "is a binary file, not a CSV"),
    ("point_id,year,lon,lat,province,aci_code\n1,2019,-106.4,52.3,SK,147\n2,2019,-97.7,49.6,MB,146\n3,2019,-97.7,49.6,MB,Bl\xe9\n".encode("latin-1"),
     "is not UTF-8 text: save it as UTF-8"),
])
def test_unreadable_points_files_are_explained(tmp_path, content, message):
    from cropland.points.table import read_points

    path = tmp_path / "points.csv"
    path.write_bytes(content)
    with pytest.raises(PointsError, match=re.escape(message)):
        read_points(path)


def test_parquet_is_geoparquet_with_wgs84_points(tmp_path):
    """The geometry column holds each row's lon/lat as WKB points (decoded here by hand)."""
    import json
    import struct

    import pyarrow.parquet as pq

    from cropland.points.table import read_points, write_points

    path = write_points(table(), tmp_path / "points.parquet")
    written = pq.read_table(path)
    geo = json.loads(written.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["version"] == "1.1.0"
    column = geo["columns"]["geometry"]
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["Point"] and "crs" not in column
    assert column["bbox"] == [-106.4, 49.6, -97.7, 52.3]
    rows = written.to_pandas()
    for wkb, lon, lat in zip(rows["geometry"], rows["lon"], rows["lat"], strict=True):
        order = "<" if wkb[0] == 1 else ">"
        kind, x, y = struct.unpack(order + "Idd", wkb[1:])
        assert (kind, x, y) == (1, lon, lat)
    pd.testing.assert_frame_equal(read_points(path), validate_points(table()))
