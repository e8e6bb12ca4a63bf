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
