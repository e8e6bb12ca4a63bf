"""Offline province lookup: known places, borders, and the real 2019 point list."""

from __future__ import annotations

import pandas as pd
import pytest

from cropland.points.original import import_original
from cropland.points.provinces import agreement, locate, nearest_locality

PLACES = [  # (lon, lat, code): capitals and border towns, from any atlas
    (-104.61, 50.45, "SK"),  # Regina
    (-97.14, 49.90, "MB"),  # Winnipeg
    (-113.49, 53.55, "AB"),  # Edmonton
    (-123.12, 49.28, "BC"),  # Vancouver
    (-79.38, 43.65, "ON"),  # Toronto
    (-73.57, 45.50, "QC"),  # Montreal
    (-66.64, 45.96, "NB"),  # Fredericton
    (-63.58, 44.65, "NS"),  # Halifax
    (-63.13, 46.24, "PE"),  # Charlottetown
    (-52.71, 47.56, "NL"),  # St. John's
    (-75.70, 45.42, "ON"),  # Ottawa, across the river from ...
    (-75.73, 45.48, "QC"),  # ... Gatineau
    (-110.03, 53.28, "AB"),  # Lloydminster, west of the 110th meridian ...
    (-109.97, 53.28, "SK"),  # ... and east of it
    (-135.06, 60.72, "YT"),  # Whitehorse: a territory
    (-93.27, 44.98, None),  # Minneapolis
    (-40.0, 45.0, None),  # the Atlantic
]


def test_known_places():
    lon, lat, want = zip(*PLACES, strict=True)
    assert list(locate(lon, lat)) == list(want)


def test_border_tolerance():
    # 1.1 km south of the 49th parallel in Saskatchewan: inside with the default 5 km.
    assert locate([-105.0], [48.99])[0] == "SK"
    assert locate([-105.0], [48.99], tolerance_km=0)[0] is None
    assert locate([-105.0], [48.90])[0] is None  # 11 km south
    assert list(locate([float("nan")], [50.0])) == [None]


def test_agreement_with_the_real_2019_list(original_csv):
    """The lookup against the file's Province Code, with an independent second opinion.

    The file has wrong codes: 134 points in Manitoba are coded QC (their Region says
    Manitoba), and 48 more lie 1.4-105 km inside another province than their code (21 on
    Prince Edward Island coded NB, 20 in Quebec's Pontiac and Temiscamingue coded ON, ...).
    GeoNames (nearest Canadian locality; point data independent of the boundaries) confirms
    the file's code for most points: on those the lookup must agree on >= 99.5 %.
    """
    points = import_original(original_csv).points
    raw = agreement(points)
    second = nearest_locality(points["lon"], points["lat"])["province"].to_numpy()
    lookup = locate(points["lon"], points["lat"])
    confirmed = (points["province"].to_numpy() == second)
    on_confirmed = (lookup[confirmed] == points["province"].to_numpy()[confirmed]).mean()
    geonames_vs_lookup = (second == lookup).mean()
    print(f"\nprovince lookup vs Province Code, all {raw.n_points} points: {raw.share:.2%}")
    print(raw.summary())
    print(f"GeoNames vs lookup: {geonames_vs_lookup:.2%}; GeoNames vs Province Code: "
          f"{confirmed.mean():.2%}")
    print(f"lookup vs Province Code where GeoNames confirms it ({confirmed.sum()} points): "
          f"{on_confirmed:.2%}")
    assert raw.n_points == 4984
    assert on_confirmed >= 0.995
    assert geonames_vs_lookup >= 0.995
    # Every disagreement with the file is one of the documented wrong codes.
    pairs = raw.mismatches.groupby(["province", "lookup"]).size().to_dict()
    assert pairs == {("QC", "MB"): 134, ("NB", "PE"): 21, ("ON", "QC"): 20,
                     ("QC", "ON"): 5, ("AB", "BC"): 1, ("SK", "AB"): 1}


def test_agreement_summary_counts_pairs():
    table = pd.DataFrame({"point_id": [1, 2, 3], "lon": [-104.61, -97.14, -97.14],
                          "lat": [50.45, 49.90, 49.90], "province": ["SK", "SK", "MB"]})
    result = agreement(table)
    assert (result.n_points, result.n_agree) == (3, 2)
    assert result.share == pytest.approx(2 / 3)
    assert "given SK -> lookup MB: 1" in result.summary()
