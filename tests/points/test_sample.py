"""Field-centre sampling on rasters with known fields."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from cropland.points.aci import open_aci
from cropland.points.config import SampleConfig
from cropland.points.sample import (
    erode,
    find_candidates,
    integral_image,
    sample_points,
    window_sums,
)
from tests.points.aci_fields import BARLEY, CANOLA, CORN, RES, SOYBEAN, field_layout

CLASSES = ["CORN", "SOYBEAN", "CANOLA", "BARLEY"]


def config(**kw) -> SampleConfig:
    base = {"year": 2019, "aci": ["x.tif"], "classes": CLASSES, "quota": 50,
            "min_purity": 0.9, "window_m": 640, "centre_px": 3, "min_spacing_m": 910, "seed": 7}
    return SampleConfig(**{**base, **kw})


def brute_force_candidates(a: np.ndarray, codes, window: int, centre: int, purity: float):
    """Every (row, col, code, share) by direct inspection of each window (no box sums)."""
    h, k = window // 2, centre // 2
    out = []
    for r, c in itertools.product(range(a.shape[0]), range(a.shape[1])):
        if r - h < 0 or c - h < 0 or r + h >= a.shape[0] or c + h >= a.shape[1]:
            continue
        win = a[r - h : r + h + 1, c - h : c + h + 1]
        if (win == 0).any():
            continue
        for code in codes:
            share = (win == code).sum() / win.size
            if share >= purity and (a[r - k : r + k + 1, c - k : c + k + 1] == code).all():
                out.append((r, c, code, share))
    return pd.DataFrame(out, columns=["row", "col", "aci_code", "share"])


def test_window_sums_and_erosion_match_direct_computation():
    rng = np.random.default_rng(0)
    mask = rng.random((13, 17)) < 0.4
    rows, cols = np.mgrid[0:9, 0:13]
    got = window_sums(integral_image(mask), rows.ravel(), cols.ravel(), 5).reshape(9, 13)
    want = np.array([[mask[i:i + 5, j:j + 5].sum() for j in range(13)] for i in range(9)])
    np.testing.assert_array_equal(got, want)
    dense = rng.random((13, 17)) < 0.9
    eroded = np.array([[dense[i:i + 3, j:j + 3].all() for j in range(15)] for i in range(11)])
    np.testing.assert_array_equal(erode(dense, 3), eroded)
    assert eroded.any() and not eroded.all()


@pytest.mark.parametrize("purity", [0.85, 0.9, 1.0])
def test_candidates_are_exactly_the_pure_uniform_windows(aci_2019, purity):
    with open_aci(aci_2019) as reader:
        got = find_candidates(reader, config(min_purity=purity, chunk_px=64), thin=False)
    want = brute_force_candidates(field_layout(), [CORN, SOYBEAN, CANOLA, BARLEY], 21, 3, purity)
    key = ["row", "col", "aci_code"]
    got, want = got.sort_values(key, ignore_index=True), want.sort_values(key, ignore_index=True)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got[key].astype("int64"), want[key].astype("int64"))
    np.testing.assert_allclose(got["share"], want["share"])


def test_known_fields_give_the_expected_candidates(aci_2019):
    with open_aci(aci_2019) as reader:
        cands = find_candidates(reader, config(min_purity=1.0), thin=False)
    by_class = cands.groupby("aci_code")
    # Pure windows only. Corn: centres 10 px inside the 40 x 50 field (20 x 30), minus
    # those whose window reaches the 4 x 4 no-data hole at rows 28-31, cols 50-53.
    corn = by_class.get_group(CORN)
    rows, cols = np.mgrid[20:40, 20:50]
    near_hole = (rows + 10 >= 28) & (rows - 10 <= 31) & (cols + 10 >= 50) & (cols - 10 <= 53)
    assert len(corn) == (~near_hole).sum()
    assert set(corn["share"]) == {1.0}
    # Soybean: 20 x 10 pure centres; canola has grass stripes in every window.
    assert len(by_class.get_group(SOYBEAN)) == 20 * 10
    assert CANOLA not in by_class.groups
    # Barley is 20 rows tall at the bottom edge: its pure windows would cross the edge.
    assert BARLEY not in by_class.groups
    h = 10
    assert cands["row"].between(h, 119 - h).all() and cands["col"].between(h, 159 - h).all()


def test_canola_passes_a_lower_purity_with_uniform_centres_only(aci_2019):
    with open_aci(aci_2019) as reader:
        cands = find_candidates(reader, config(min_purity=0.85), thin=False)
    canola = cands[cands["aci_code"] == CANOLA]
    a = field_layout()
    assert len(canola) > 0
    for r, c in zip(canola["row"], canola["col"], strict=True):
        assert (a[r - 1 : r + 2, c - 1 : c + 2] == CANOLA).all()  # never on a stripe


def test_chunking_does_not_change_the_result(aci_2019):
    with open_aci(aci_2019) as reader:
        small = find_candidates(reader, config(chunk_px=64))
        large = find_candidates(reader, config(chunk_px=4096))
    pd.testing.assert_frame_equal(small, large)


def _distances_m(points: pd.DataFrame) -> np.ndarray:
    x, y = Transformer.from_crs(4326, 3978, always_xy=True).transform(points["lon"], points["lat"])
    xy = np.c_[x, y]
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    return d[np.triu_indices(len(xy), 1)]


def test_sampled_points_are_pure_spaced_and_labelled(aci_2019):
    cfg = config(min_spacing_m=300, quota=1000)
    with open_aci(aci_2019) as reader:
        result = sample_points([reader], cfg)
    pts = result.points
    assert set(pts["label"]) == set(CLASSES)  # canola and barley pass at 90 %
    assert pts["province"].eq("MB").all()
    assert _distances_m(pts).min() >= 300 - 1e-6  # lon/lat round trip
    # Each point's own window, read back at its coordinates, has the stated purity.
    a = field_layout()
    x, y = Transformer.from_crs(4326, 3978, always_xy=True).transform(pts["lon"], pts["lat"])
    cols = np.floor((np.asarray(x) + 390450.0) / RES).astype(int)
    rows = np.floor((150060.0 - np.asarray(y)) / RES).astype(int)
    for r, c, code, share in zip(rows, cols, pts["aci_code"], pts["share"], strict=True):
        win = a[r - 10 : r + 11, c - 10 : c + 11]
        assert (win == code).mean() == pytest.approx(share)
        assert share >= 0.9 and not (win == 0).any()
    # Greedy packing of a 20 x 30 px centre area at 10 px (300 m) spacing: several points.
    assert result.summary.set_index("class").loc["CORN", "selected"] >= 4


def test_default_spacing_keeps_patches_apart(aci_2019):
    with open_aci(aci_2019) as reader:
        pts = sample_points([reader], config(quota=1000)).points
    assert len(pts) >= 2
    assert _distances_m(pts).min() >= 910 - 1e-6


def test_same_seed_same_points_other_seed_other_points(aci_2019):
    with open_aci(aci_2019) as reader:
        a = sample_points([reader], config(seed=1, quota=1, min_spacing_m=100)).points
        b = sample_points([reader], config(seed=1, quota=1, min_spacing_m=100)).points
        c = sample_points([reader], config(seed=2, quota=1, min_spacing_m=100)).points
    pd.testing.assert_frame_equal(a, b)
    assert not a[["lon", "lat"]].equals(c[["lon", "lat"]])


def test_quotas_and_summary(aci_2019):
    cfg = config(quota=3, quotas={"SOYBEAN": 1}, min_spacing_m=100, first_id=100)
    with open_aci(aci_2019) as reader:
        result = sample_points([reader], cfg)
    counts = result.points["label"].value_counts().to_dict()
    assert counts == {"CORN": 3, "SOYBEAN": 1, "CANOLA": 3, "BARLEY": 3}
    assert list(result.points["point_id"]) == list(range(100, 110))
    summary = result.summary.set_index("class")
    assert summary["wanted"].to_dict() == {"CORN": 3, "SOYBEAN": 1, "CANOLA": 3, "BARLEY": 3}
    assert summary["selected"].to_dict() == counts
    assert summary.loc["SOYBEAN", "candidates"] > 1


def test_province_filter_and_per_province_quota(aci_2019):
    with open_aci(aci_2019) as reader:
        none = sample_points([reader], config(provinces=["ON"])).points
        per = sample_points([reader], config(per_province=True, quota=2, min_spacing_m=100))
    assert none.empty
    assert set(per.summary["province"]) == {"MB"}
    assert per.points.groupby(["label", "province"]).size().to_dict() == {
        (name, "MB"): 2 for name in CLASSES}
