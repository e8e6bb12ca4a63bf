"""Splits: grouped by point across years, stratified, deterministic, checksummed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cropland.config import SplitConfig
from cropland.dataset import read_splits, write_splits
from cropland.errors import DatasetError
from cropland.split import extend_splits, largest_remainder, majority_class, make_splits

FRACTIONS = {"training": 0.70, "validation": 0.15, "test": 0.15}
#: Points per majority class: 20 and 21 (small), 40, 57, 100, 137.
CLASS_SIZES = {"BARLEY": 20, "CANOLA": 21, "CORN": 40, "OAT": 57, "POTATO": 100, "SOYBEAN": 137}


def _points() -> pd.DataFrame:
    """Points over 3 years; each point's label is its class in 2 of 3 years (rotation)."""
    rng = np.random.default_rng(7)
    rows, point_id = [], 1
    classes = list(CLASS_SIZES)
    for label, n in CLASS_SIZES.items():
        for _ in range(n):
            other = classes[int(rng.integers(len(classes)))]
            labels = [label, label, other]
            rng.shuffle(labels)
            for year, year_label in zip((2018, 2019, 2020), labels, strict=True):
                rows.append({"point_id": point_id, "year": year, "label": year_label})
            point_id += 1
    return pd.DataFrame(rows).sample(frac=1, random_state=1)  # row order must not matter


@pytest.fixture(scope="module")
def points() -> pd.DataFrame:
    return _points()


def test_every_point_in_exactly_one_split_for_all_years(points: pd.DataFrame) -> None:
    splits = make_splits(points, SplitConfig(), seed=0)
    assert set(splits.assignments) == set(points["point_id"])
    # No leakage: joining the assignment to every (point, year) row gives one split per point.
    rows = points.assign(split=points["point_id"].map(splits.assignments))
    assert rows.groupby("point_id")["split"].nunique().max() == 1
    parts = [set(splits.points(s)) for s in FRACTIONS]
    assert sum(len(p) for p in parts) == len(splits.assignments)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_per_class_proportions_within_two_points(points: pd.DataFrame) -> None:
    splits = make_splits(points, SplitConfig(), seed=3)
    strata = majority_class(points)
    assert strata.value_counts().to_dict() == CLASS_SIZES
    for label, members in strata.groupby(strata):
        counts = Counter(splits.assignments[p] for p in members.index)
        n = len(members)
        for split, fraction in FRACTIONS.items():
            assert abs(counts[split] / n - fraction) <= 0.02 + 1e-9, (label, split, counts)


def test_images_per_class_follow_the_fractions_despite_rotation(points: pd.DataFrame) -> None:
    # Each point brings point-years of another class into its split (rotation); the images of
    # every class, not only the points of every stratum, are split 70/15/15 within 2 points.
    for seed in (0, 1, 2):
        splits = make_splits(points, SplitConfig(), seed=seed)
        rows = points.assign(split=points["point_id"].map(splits.assignments))
        shares = pd.crosstab(rows["label"], rows["split"], normalize="index")
        for split, fraction in FRACTIONS.items():
            assert (shares[split] - fraction).abs().max() <= 0.02, (seed, split, shares)


def test_majority_class_ties_go_to_the_first_name() -> None:
    df = pd.DataFrame(
        {"point_id": [1, 1, 2, 2, 2], "year": [2019, 2020, 2018, 2019, 2020],
         "label": ["OAT", "CORN", "OAT", "POTATO", "POTATO"]}
    )
    assert majority_class(df).to_dict() == {1: "CORN", 2: "POTATO"}


def test_largest_remainder_sums_and_stays_within_one() -> None:
    for n in range(1, 1000):
        counts = largest_remainder(n, [0.7, 0.15, 0.15])
        assert sum(counts) == n
        assert all(abs(c - n * f) < 1 for c, f in zip(counts, [0.7, 0.15, 0.15], strict=True))


def test_largest_remainder_known_values() -> None:
    assert largest_remainder(20, [0.7, 0.15, 0.15]) == [14, 3, 3]
    assert largest_remainder(21, [0.7, 0.15, 0.15]) == [15, 3, 3]  # remainders .7 .15 .15
    assert largest_remainder(23, [0.7, 0.15, 0.15]) == [16, 4, 3]  # .1 .45 .45: tie -> earlier


def test_deterministic_and_seed_dependent(points: pd.DataFrame) -> None:
    a = make_splits(points, SplitConfig(), seed=0)
    b = make_splits(points.sample(frac=1, random_state=9), SplitConfig(), seed=0)
    c = make_splits(points, SplitConfig(), seed=1)
    assert a.assignments == b.assignments and a.sha256 == b.sha256
    changed = sum(a.assignments[p] != c.assignments[p] for p in a.assignments)
    assert changed > len(a.assignments) // 10


def test_other_fractions(points: pd.DataFrame) -> None:
    splits = make_splits(points, SplitConfig(training=0.8, validation=0.0, test=0.2), seed=0)
    counts = Counter(splits.assignments.values())
    assert counts["validation"] == 0
    assert counts["training"] == sum(round(n * 0.8) for n in CLASS_SIZES.values())


def test_write_read_round_trip(tmp_path: Path, points: pd.DataFrame) -> None:
    splits = make_splits(points, SplitConfig(), seed=5)
    path = write_splits(splits, tmp_path / "splits.json")
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"], doc["seed"]) == ("cropland-splits", 1, 5)
    assert doc["fractions"] == FRACTIONS
    assert list(doc["assignments"])[:3] == ["1", "2", "3"]
    assert read_splits(path) == splits


def test_tampering_is_caught(tmp_path: Path, points: pd.DataFrame) -> None:
    path = write_splits(make_splits(points, SplitConfig(), seed=5), tmp_path / "splits.json")
    doc = json.loads(path.read_text())
    first = next(iter(doc["assignments"]))
    doc["assignments"][first] = "test" if doc["assignments"][first] != "test" else "training"
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        read_splits(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a valid splits file"),
        ('{"format": "other", "version": 1}', "format"),
        ('{"format": "cropland-splits", "version": 2}', "version 2"),
    ],
)
def test_foreign_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "splits.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_splits(path)


def test_missing_file_and_unknown_point(tmp_path: Path, points: pd.DataFrame) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_splits(tmp_path / "splits.json")
    with pytest.raises(DatasetError, match="point 999999 has no split"):
        make_splits(points, SplitConfig(), seed=0).split_of(999999)


def test_extended_splits_keep_known_points_and_split_new_ones(points: pd.DataFrame) -> None:
    """A build that gains points (an added year) keeps every known point in its split."""
    old_ids = set(points["point_id"].drop_duplicates().sample(frac=0.6, random_state=3))
    known = make_splits(points[points["point_id"].isin(old_ids)], SplitConfig(), seed=4)
    extended = extend_splits(known, points)
    assert extended.seed == 4 and extended.fractions == known.fractions
    assert all(extended.assignments[p] == s for p, s in known.assignments.items())
    new = {p: s for p, s in extended.assignments.items() if p not in known.assignments}
    assert set(new) == set(points["point_id"]) - old_ids
    counts = Counter(new.values())  # the new points follow the fractions among themselves
    for split, share in FRACTIONS.items():
        assert abs(counts[split] - share * len(new)) <= len(CLASS_SIZES)
    assert extend_splits(extended, points) is extended  # nothing new: the same splits


def _placed(points: pd.DataFrame, xy: dict[int, tuple[float, float]]) -> pd.DataFrame:
    """``points`` with each point at its EPSG:3978 position ``xy[point_id]`` as WGS84 lon/lat."""
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs("EPSG:3978", "EPSG:4326", always_xy=True)
    lonlat = {p: to_lonlat.transform(x, y) for p, (x, y) in xy.items()}
    return points.assign(lon=points["point_id"].map(lambda p: lonlat[p][0]),
                         lat=points["point_id"].map(lambda p: lonlat[p][1]))


@pytest.fixture(scope="module")
def crowded(points: pd.DataFrame) -> tuple[pd.DataFrame, list[list[int]]]:
    """The points 5 km apart, except 40 pairs at one place, 10 pairs 600 m apart (64 px patches at
    10 m overlap) and a chain of three 500 m apart; 10 pairs 700 m apart do not overlap."""
    ids = sorted(points["point_id"].unique())
    xy = {p: (-100_000 + 5_000 * (i % 40), 500_000 + 5_000 * (i // 40)) for i, p in enumerate(ids)}
    groups = []
    for k, offset in [(k, 0) for k in range(40)] + [(k, 600) for k in range(40, 50)]:
        a, b = ids[2 * k], ids[2 * k + 1]
        xy[b] = (xy[a][0] + offset, xy[a][1] + offset / 2)
        groups.append([a, b])
    for k in range(50, 60):
        xy[ids[2 * k + 1]] = (xy[ids[2 * k]][0], xy[ids[2 * k]][1] - 700)
    chain = ids[130:133]
    xy[chain[1]], xy[chain[2]] = (xy[chain[0]][0] + 500, xy[chain[0]][1]), (xy[chain[0]][0] + 1000, xy[chain[0]][1])
    return _placed(points, xy), [*groups, chain]


def test_points_whose_patches_overlap_share_a_split(crowded, caplog) -> None:
    from cropland.split import location_groups

    table, together = crowded
    grouped = location_groups(table, patch_extent=640)
    assert sorted(sorted(int(p) for p in m) for _, m in grouped.index.to_series().groupby(grouped.to_numpy())
                  if len(m) > 1) == sorted(together)
    with caplog.at_level("WARNING", logger="cropland.split"):
        splits = make_splits(table, SplitConfig(), seed=0, patch_extent=640)
    for group in together:
        assert len({splits.assignments[p] for p in group}) == 1, group
    assert "51 groups of points are at the same place or their patches overlap" in caplog.text
    assert f"[{together[0][0]}, {together[0][1]}]" in caplog.text
    rows = table.assign(split=table["point_id"].map(splits.assignments))  # still 70/15/15 by class
    shares = pd.crosstab(rows["label"], rows["split"], normalize="index")
    assert (shares["training"] - 0.7).abs().max() <= 0.03


def test_a_new_point_at_a_known_place_joins_its_split(crowded) -> None:
    table, together = crowded
    late = {p for group in together[:20] for p in group[1:]} | set(range(200, 260))
    known = make_splits(table[~table["point_id"].isin(late)], SplitConfig(), seed=1, patch_extent=640)
    extended = extend_splits(known, table, patch_extent=640)
    assert {p: extended.assignments[p] for p in known.assignments} == known.assignments
    for group in together[:20]:
        assert extended.assignments[group[1]] == known.assignments[group[0]]
    assert set(extended.assignments) == set(table["point_id"])
