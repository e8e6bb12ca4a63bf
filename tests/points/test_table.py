"""The points table: canonical dtypes, and errors that name what to fix."""

from __future__ import annotations

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
    ("aci_code", [147, float("nan")], "aci_code must be whole numbers"),
    ("lon", ["-106.4", "east"], "wrong type"),
    ("province", ["SK", "XX"], "unknown province codes in rows [1]"),
])
def test_bad_values_raise_points_error(column, values, message):
    with pytest.raises(PointsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_points(table(**{column: values}), "pts.csv")


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
