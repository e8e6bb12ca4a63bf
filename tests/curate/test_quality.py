"""Quality scores of the fake dataset, against the defects painted into it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cropland.config import CurateConfig
from cropland.core.naming import SampleName
from cropland.curate.quality import rgb_difference, score_samples, stripe_score
from cropland.dataset import DatasetFolder
from tests.curate.curate_fakes import (
    CLOUD_BLOCK,
    NODATA_BLOCK,
    SATURATED_BLOCK,
    SIZE,
    Spec,
    field_array,
    make_dataset,
    paint,
    standard_specs,
)

N = SIZE * SIZE


def block_fraction(block) -> float:
    return np.zeros((SIZE, SIZE))[block].size / N


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("q"), standard_specs())
    return {q.sample_id: q for q in score_samples(DatasetFolder(root).samples(), CurateConfig(), progress=False)}


def test_verdicts(scores):
    got = {sid: q.status for sid, q in scores.items()}
    assert got == {
        "POINT_1_201906_AB_BARLEY": "review", "POINT_1_201907_AB_BARLEY": "review",
        "POINT_1_201908_AB_BARLEY": "rejected",
        "POINT_2_201906_MB_CORN": "accepted", "POINT_2_201907_MB_CORN": "rejected",
        "POINT_2_201908_MB_CORN": "review",
        "POINT_3_201906_SK_OAT": "accepted", "POINT_3_201907_SK_OAT": "rejected",
        "POINT_3_201908_SK_OAT": "review",
        "POINT_4_201906_ON_CORN": "accepted", "POINT_4_201907_ON_CORN": "rejected",
        "POINT_4_201909_ON_CORN": "accepted",
    }


def test_cloud_from_pixels(scores):
    q = scores["POINT_1_201908_AB_BARLEY"]
    assert q.metrics["cloud_pixels"] == pytest.approx(block_fraction(CLOUD_BLOCK))
    assert q.reasons[0].startswith("cloud 0.25 > 0.2")


def test_cloud_from_tag(scores):
    q = scores["POINT_4_201907_ON_CORN"]
    assert q.metrics["cloud_tag"] == 0.5 and q.metrics["cloud_pixels"] == 0
    assert q.reasons == ["cloud 0.5 > 0.2"]


def test_nodata_and_valid_observations(scores):
    q = scores["POINT_2_201907_MB_CORN"]
    assert q.metrics["nodata"] == pytest.approx(block_fraction(NODATA_BLOCK))
    assert q.metrics["valid_min"] == 0
    _, valid = field_array(seed=4)  # the generator's VALID for this sample, then the block
    valid[NODATA_BLOCK] = 0
    assert q.metrics["valid_mean"] == pytest.approx(valid.mean())
    clean = scores["POINT_2_201906_MB_CORN"].metrics
    assert clean["nodata"] == 0 and clean["valid_min"] == 3  # the generator draws 3-5


def test_saturation(scores):
    q = scores["POINT_3_201907_SK_OAT"]
    assert q.metrics["saturation"] == pytest.approx(block_fraction(SATURATED_BLOCK))
    assert any(r.startswith("saturation") for r in q.reasons)


def test_shares_of_values_above_one_and_below_zero(scores, tmp_path):
    saturated = scores["POINT_3_201907_SK_OAT"].metrics
    assert saturated["above_one"] == pytest.approx(3 * block_fraction(SATURATED_BLOCK) / 12)
    assert saturated["negative"] == 0
    assert all(q.metrics["negative"] == 0 for q in scores.values())
    root = make_dataset(tmp_path, [Spec(SampleName(9, 2019, 7, "AB", "BARLEY"), "negative")])
    [q] = score_samples(DatasetFolder(root).samples(), CurateConfig(), progress=False)
    assert q.metrics["negative"] == pytest.approx(256 / (12 * N))
    assert (q.status, q.reasons) == ("review", ["negative reflectance 0.0208 > 0.01"])
    [q] = score_samples(DatasetFolder(root).samples(), CurateConfig(negative_review=0.05),
                        progress=False)
    assert q.status == "accepted"


def test_stripes_flagged_and_fields_not(scores):
    assert 15 < scores["POINT_2_201908_MB_CORN"].metrics["stripe"] < 60  # review, not reject
    clean = [q for q in scores.values() if q.status == "accepted"]
    assert clean and all(q.metrics["stripe"] < 4 for q in clean)


def test_stripe_score_is_the_anomaly_over_the_noise_floor():
    cfg = CurateConfig()
    data = np.full((19, 20, 20), 0.1, dtype=np.float32)
    data[1, :, 5] += 0.05  # one column of B2 brighter by 0.05, nothing else varies
    assert stripe_score(data, cfg) == pytest.approx(0.05 / cfg.stripe_floor, rel=1e-4)


def test_low_contrast(scores):
    q = scores["POINT_3_201908_SK_OAT"]
    assert q.metrics["contrast"] == pytest.approx(0, abs=1e-6)
    assert q.reasons == ["low contrast 0 < 0.01"]


def test_near_duplicates_point_at_each_other(scores):
    a, b = scores["POINT_1_201906_AB_BARLEY"], scores["POINT_1_201907_AB_BARLEY"]
    assert a.metrics["duplicate"] == 0 and a.metrics["duplicate_of"] == b.sample_id
    assert b.metrics["duplicate_of"] == a.sample_id
    assert scores["POINT_2_201906_MB_CORN"].metrics["duplicate"] > 0.02


def test_rgb_difference_values():
    a = np.ones((3, 4, 4), dtype=np.float32)
    assert rgb_difference(a, a) == 0
    assert rgb_difference(a, 3 * a) == pytest.approx(2 / 2)  # |1-3| / ((1+3)/2)
    b = a.copy()
    b[:, :2] = np.nan
    assert rgb_difference(a, b) == 0  # compared where both are valid only
    assert math.isnan(rgb_difference(a, np.full_like(a, np.nan)))


def test_thresholds_change_the_verdict(tmp_path):
    root = make_dataset(tmp_path, [Spec(SampleName(9, 2019, 7, "AB", "BARLEY"), cloud_tag=0.1)])
    strict = CurateConfig(cloud_review=0.01, cloud_reject=0.05)
    lax = CurateConfig(cloud_review=0.5, cloud_reject=0.6)
    assert score_samples(DatasetFolder(root).samples(), strict, progress=False)[0].status == "rejected"
    assert score_samples(DatasetFolder(root).samples(), lax, progress=False)[0].status == "accepted"


def test_paint_rejects_unknown_defects():
    r, v = field_array(0)
    with pytest.raises(ValueError, match="unknown defect"):
        paint("smudge", r, v)


def test_processes_give_the_same_scores(tmp_path):
    root = make_dataset(tmp_path, standard_specs())
    one = score_samples(DatasetFolder(root).samples(), CurateConfig(), progress=False)
    two = score_samples(DatasetFolder(root).samples(), CurateConfig(), progress=False, workers=2)
    assert [(q.sample_id, q.status, q.reasons, q.metrics) for q in one] == [
        (q.sample_id, q.status, q.reasons, q.metrics) for q in two]
