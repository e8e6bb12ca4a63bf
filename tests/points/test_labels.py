"""Yearly labels: centre class, window majority and share, rules, crop rotation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from cropland.points.aci import open_aci
from cropland.points.config import LabelRule
from cropland.points.labels import label_points, to_points_table
from tests.points.aci_fields import CANOLA, CORN, GRASS, OAT, ORIGIN, RES, SOYBEAN, field_layout, write_aci

# (point_id, row, col): corn centre, soybean centre, a canola grass stripe, the top-left
# corner (window mostly outside), and a point 1 km outside the raster.
PIXELS = [(1, 20, 25), (2, 80, 25), (3, 80, 56), (4, 2, 2), (5, -40, 60)]


def points_at(pixels) -> pd.DataFrame:
    x = [ORIGIN[0] + (c + 0.5) * RES for _, _, c in pixels]
    y = [ORIGIN[1] - (r + 0.5) * RES for _, r, _ in pixels]
    lon, lat = Transformer.from_crs(3978, 4326, always_xy=True).transform(x, y)
    return pd.DataFrame({"point_id": [p for p, _, _ in pixels], "lon": lon, "lat": lat,
                         "province": "MB"})


def expected(a: np.ndarray, r: int, c: int) -> tuple:
    """Centre, majority and shares computed directly on the array (21 x 21 window)."""
    padded = np.pad(a, 30, constant_values=0)
    win = padded[r + 30 - 10 : r + 30 + 11, c + 30 - 10 : c + 30 + 11]
    values = win[win != 0]
    if values.size == 0:
        return (pd.NA, pd.NA, 0.0, 0.0)
    codes, counts = np.unique(values, return_counts=True)
    centre = win[10, 10]
    return (pd.NA if centre == 0 else int(centre), int(codes[counts.argmax()]),
            counts.max() / 441, values.size / 441)


@pytest.fixture
def labels(aci_2019, aci_2020):
    with open_aci(aci_2019, 2019) as a, open_aci(aci_2020, 2020) as b:
        return label_points(points_at(PIXELS), {2019: [a], 2020: [b]})


def test_window_statistics_match_direct_computation(labels):
    for year in (2019, 2020):
        a = field_layout(year)
        got = labels[labels["year"] == year].set_index("point_id")
        for pid, r, c in PIXELS:
            centre, majority, share, valid = expected(a, r, c)
            row = got.loc[pid]
            assert (row["centre_code"] is pd.NA) == (centre is pd.NA)
            if centre is not pd.NA:
                assert row["centre_code"] == centre
            if majority is not pd.NA:
                assert row["majority_code"] == majority
            assert row["majority_share"] == pytest.approx(share)
            assert row["valid_share"] == pytest.approx(valid)


def test_centre_rule_and_rotation_flags(labels):
    table = labels.set_index(["point_id", "year"])
    assert table.loc[(1, 2019), "label"] == "CORN" and table.loc[(1, 2020), "label"] == "OAT"
    assert table.loc[(1, 2020), "changed"] and not table.loc[(1, 2019), "changed"]
    assert table.loc[1, "rotates"].all()
    assert table.loc[(2, 2019), "label"] == table.loc[(2, 2020), "label"] == "SOYBEAN"
    assert not table.loc[2, "rotates"].any() and not table.loc[2, "changed"].any()
    assert table.loc[(3, 2019), "aci_code"] == GRASS  # the centre is on a grass stripe
    assert table.loc[(5, 2019), "label"] == "" and pd.isna(table.loc[(5, 2019), "aci_code"])


def test_majority_and_agree_rules(aci_2019):
    pts = points_at(PIXELS[:3])
    with open_aci(aci_2019, 2019) as a:
        majority = label_points(pts, {2019: [a]}, LabelRule(rule="majority", min_share=0.8))
        agree = label_points(pts, {2019: [a]}, LabelRule(rule="agree", min_share=0.8))
        strict = label_points(pts, {2019: [a]}, LabelRule(rule="majority", min_share=0.99))
    assert list(majority["aci_code"]) == [CORN, SOYBEAN, CANOLA]
    assert list(agree["aci_code"].fillna(-1)) == [CORN, SOYBEAN, -1]  # stripe: centre != majority
    assert list(strict["aci_code"].fillna(-1)) == [CORN, SOYBEAN, -1]  # canola share 0.86


def test_a_year_split_over_two_rasters_labels_like_one(tmp_path, aci_2019):
    a = field_layout()
    west = write_aci(tmp_path / "west.tif", a[:, :80])
    import rasterio
    from affine import Affine

    east = tmp_path / "east.tif"
    with rasterio.open(east, "w", driver="GTiff", width=80, height=120, count=1, dtype="uint8",
                       crs="EPSG:3978", nodata=0,
                       transform=Affine(RES, 0, ORIGIN[0] + 80 * RES, 0, -RES, ORIGIN[1])) as d:
        d.write(a[:, 80:], 1)
    pts = points_at(PIXELS + [(6, 50, 78), (7, 50, 82)])
    with open_aci(aci_2019) as whole, open_aci(west) as w, open_aci(east) as e:
        one = label_points(pts, {2019: [whole]})
        two = label_points(pts, {2019: [w, e]})
    cols = ["point_id", "centre_code", "aci_code", "label"]
    pd.testing.assert_frame_equal(one[cols], two[cols])


def test_a_year_without_raster_is_a_points_error():
    from cropland.errors import PointsError

    with pytest.raises(PointsError, match="2019: no ACI raster"):
        label_points(points_at(PIXELS), {2019: []})


def test_points_table_of_labelled_years(labels):
    table = to_points_table(labels, points_at(PIXELS))
    assert len(table) == 2 * 4  # point 5 is outside the raster both years
    assert set(table.loc[table["point_id"] == 1, "aci_code"]) == {CORN, OAT}
    from cropland.points.table import validate_points

    assert len(validate_points(table)) == 8
