"""The curated release: rejected samples left out, splits kept, files complete."""

from __future__ import annotations

import csv
import json

import pytest

from cropland.curate.export import export_curated
from cropland.curate.store import Store
from cropland.dataset import read_splits
from cropland.errors import DatasetError

AUTO_REJECTED = {"POINT_1_201908_AB_BARLEY", "POINT_2_201907_MB_CORN", "POINT_3_201907_SK_OAT"}
REVIEWER_REJECTED = {"POINT_4_201906_ON_CORN", "POINT_3_201906_SK_OAT", "POINT_3_201908_SK_OAT"}
RESCUED = "POINT_4_201907_ON_CORN"  # rejected automatically (cloud tag), accepted by a reviewer


@pytest.fixture(scope="module")
def curated(tmp_path_factory, dataset):
    db = tmp_path_factory.mktemp("db") / "curate.sqlite"
    store = Store(db)
    store.decide("d1", "alice", sorted(REVIEWER_REJECTED), "reject", "fog")
    store.decide("d2", "bob", [RESCUED], "accept", "tag is wrong")
    out = tmp_path_factory.mktemp("release") / "curated"
    summary = export_curated(dataset, out, store, workers=1)
    return summary, out


def test_summary(curated):
    summary, _ = curated
    assert (summary.kept, summary.rejected_by_reviewers, summary.rejected_automatically) == (6, 3, 3)
    assert (summary.points_kept, summary.points_dropped) == (3, 1)


def test_only_kept_geotiffs_are_copied_unchanged(curated, dataset):
    _, out = curated
    kept = {p.stem for p in (out / "tif").rglob("*.tif")}
    source = {p.stem for p in (dataset / "tif").rglob("*.tif")}
    assert kept == source - AUTO_REJECTED - REVIEWER_REJECTED
    assert RESCUED in kept
    for p in (out / "tif").rglob("*.tif"):
        assert p.read_bytes() == (dataset / p.relative_to(out)).read_bytes()


def test_splits_unchanged_for_kept_points(curated, dataset):
    _, out = curated
    before = json.loads((dataset / "splits.json").read_text())["assignments"]
    after = read_splits(out / "splits.json")  # verifies the checksum too
    assert after.assignments == {int(p): s for p, s in before.items() if p != "3"}


def test_png_tree_and_zips_follow_the_kept_samples(curated):
    _, out = curated
    splits = read_splits(out / "splits.json").assignments
    pngs = sorted(p.relative_to(out).as_posix() for p in out.glob("2019/*/*/*/*.png"))
    kept = sorted(p.stem for p in (out / "tif").rglob("*.tif"))
    assert len(pngs) == len(kept) * 7
    for stem in kept:
        point, label = int(stem.split("_")[1]), stem.split("_", 4)[4]
        assert f"2019/RGB/{splits[point]}/{label}/{stem}_RGB.png" in pngs
    assert sorted(p.stem for p in out.glob("raw/*/*/*.zip")) == kept


def test_points_table_and_curation_log(curated):
    _, out = curated
    points = (out / "points.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in points[1:]] == ["1", "2", "4"]
    rows = {r["sample_id"]: r for r in csv.DictReader((out / "curation.csv").open())}
    assert len(rows) == 12
    assert rows[RESCUED]["final_status"] == "accepted" and rows[RESCUED]["quality_status"] == "rejected"
    assert rows[RESCUED]["reviewer"] == "bob"
    assert rows["POINT_2_201907_MB_CORN"]["quality_reasons"].startswith("no-data")
    assert rows["POINT_2_201908_MB_CORN"]["final_status"] == "review"  # kept, still to review


def test_report_and_card_regenerated(curated):
    _, out = curated
    assert (out / "report.md").exists() and (out / "dataset_card.md").exists()
    card = (out / "dataset_card.md").read_text()
    assert "| BARLEY | 133 | Barley | 2 | 1 |" in card  # months 6 and 7 of point 1
    assert "| CORN | 147 | Corn | 4 | 2 |" in card  # points 2 and 4, two months each
    assert "| OAT |" not in card  # point 3 was rejected entirely


def test_existing_output_is_refused(curated, dataset):
    _, out = curated
    with pytest.raises(DatasetError, match="exists"):
        export_curated(dataset, out)


def test_the_leftover_of_a_killed_export_is_cleaned(tmp_path, dataset, db):
    from cropland.io import TEMP_SUFFIX

    out = tmp_path / "curated"
    leftover = tmp_path / f".curated{TEMP_SUFFIX}"  # what a kill -9 mid-copy leaves
    (leftover / "tif" / "2019").mkdir(parents=True)
    (leftover / "tif" / "2019" / "half.tif").write_bytes(b"II*\0 partial")
    export_curated(dataset, out, db, workers=1)
    assert not leftover.exists()
    assert not (out / "tif" / "2019" / "half.tif").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
