"""Property-based tests (hypothesis): whatever a configuration or a points table holds, it is
either accepted with every guarantee the code relies on, or refused in one line that names the
problem; never another exception."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cropland.config import dump_config, parse_config
from cropland.core.naming import MAX_POINT_ID
from cropland.errors import ConfigError, PointsError
from cropland.points.table import COLUMNS, read_points, validate_points, write_points

junk = st.one_of(
    st.none(), st.booleans(), st.text(max_size=8), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(-5, 3000), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
FIELDS = {
    "years": st.one_of(st.lists(st.integers(2010, 2110), max_size=4), junk),
    "months": st.one_of(st.lists(st.integers(-1, 14), max_size=5), junk),
    "classes": st.one_of(
        st.lists(st.sampled_from(["CORN", "BARLEY", 133, "banana", "spring wheat"]), max_size=3), junk
    ),
    "patch_size": st.one_of(st.integers(-10, 5000), junk),
    "resolution": st.one_of(st.floats(-10, 1e6), junk),
    "seed": st.one_of(st.integers(-10, 2**40), junk),
    "crs": st.one_of(st.sampled_from(["EPSG:3978", "EPSG:4326", "EPSG:32614", "nope"]), junk),
    "source": st.one_of(st.fixed_dictionaries({"kind": st.sampled_from(["simulator", "stac", "local"])}), junk),
    "splits": st.one_of(
        st.fixed_dictionaries({"training": st.floats(0, 1), "validation": st.floats(0, 1), "test": st.floats(0, 1)}),
        junk,
    ),
    "render": st.one_of(st.fixed_dictionaries({"rgb_max": st.floats(allow_nan=True, allow_infinity=True)}), junk),
    "pach_size": junk,  # a typo
}
configs = st.fixed_dictionaries(
    {"points": st.one_of(st.just({"synthetic_per_class": 2}),
                         st.fixed_dictionaries({"synthetic_per_class": st.integers(-5, 10**6)}), junk)},
    optional=FIELDS,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
@example({"points": {"": 7, "\n": 0}})  # field names with a line break, or none, stay on one line
def test_a_configuration_is_valid_or_refused_in_one_line(data):
    try:
        cfg = parse_config(data)
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message and message.startswith("config: ")
        assert any(field in message for field in [*data, "years"]), message  # names what to fix
        return
    assert cfg.years == sorted(set(cfg.years)) and all(2015 <= y <= 2100 for y in cfg.years)
    assert cfg.source.kind == "simulator" or max(cfg.years) <= date.today().year
    assert cfg.months and all(1 <= m <= 12 for m in cfg.months)
    assert cfg.classes and 1 <= cfg.patch_size <= 1024 and 0 <= cfg.seed < 2**32
    assert math.isfinite(cfg.resolution) and 0 < cfg.resolution <= 1000
    assert math.isclose(cfg.splits.training + cfg.splits.validation + cfg.splits.test, 1, abs_tol=1e-6)
    again = parse_config(yaml.safe_load(dump_config(cfg)), base=cfg.output)
    assert again == cfg  # what is saved reads back the same


ids = st.one_of(st.integers(-3, 12), st.integers(MAX_POINT_ID - 1, MAX_POINT_ID + 2),
                st.floats(-2, 12), st.just(float("nan")), st.sampled_from(["7", "x", "4.5", ""]))
rows = st.fixed_dictionaries({
    "point_id": ids,
    "year": st.one_of(st.integers(2017, 2021), st.floats(2017, 2021), st.just("2019")),
    "lon": st.one_of(st.sampled_from([-106.4, -97.7, -97.7001, 2.35]), st.floats(allow_nan=True, allow_infinity=True)),
    "lat": st.one_of(st.sampled_from([52.3, 49.6, 49.6001, -90.0]), st.floats(allow_nan=True, allow_infinity=True)),
    "province": st.sampled_from(["SK", "MB", "XX", ""]),
    "aci_code": st.one_of(st.sampled_from([146, 147, 133, "146", 9999]), junk),
})


@settings(max_examples=300, deadline=None)
@given(st.lists(rows, max_size=8))
def test_a_points_table_is_valid_or_refused_in_one_line(records):
    table = pd.DataFrame(records, columns=list(COLUMNS)[:-1])
    try:
        points = validate_points(table, "pts.csv")
    except PointsError as e:
        assert "\n" not in str(e) and str(e).startswith("pts.csv")
        return
    assert list(points.columns) == list(COLUMNS) and len(points) == len(table) > 0
    assert {c: str(points[c].dtype) for c in ("point_id", "year", "aci_code", "lon", "lat")} == {
        "point_id": "int64", "year": "int64", "aci_code": "int64", "lon": "float64", "lat": "float64"}
    assert points["point_id"].between(0, MAX_POINT_ID).all()
    assert not points.duplicated(["point_id", "year"]).any()
    assert (points.groupby("point_id")[["lon", "lat", "province"]].nunique() == 1).all().all()
    assert points["lon"].between(-180, 180).all() and points["lat"].between(-90, 90).all()
    assert points.equals(points.sort_values(["point_id", "year"]).reset_index(drop=True))
    assert (table["point_id"].astype(float) % 1 == 0).all()  # no id was rounded


@pytest.fixture(scope="module")
def points_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("points")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, MAX_POINT_ID), st.integers(2017, 2021),
                          st.sampled_from([(-106.4, 52.3, "SK", 146), (-97.7, 49.6, "MB", 147)])),
                min_size=1, max_size=6, unique_by=lambda r: r[:2]))
def test_a_valid_table_reads_back_as_written(points_dir, records):
    first_place = {}
    table = pd.DataFrame(
        [(p, y, *first_place.setdefault(p, place)[:3], place[3]) for p, y, place in records],
        columns=list(COLUMNS)[:-1])
    written = write_points(table, points_dir / "points.csv")
    pd.testing.assert_frame_equal(read_points(written), validate_points(table))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["CORN", "BARLEY", "OAT"])), min_size=3,
                max_size=60, unique_by=lambda r: r[0]),
       st.sets(st.integers(0, 60), max_size=10))
def test_points_at_one_place_always_share_a_split(records, twins):
    """Points 5 km apart on a line; each id in ``twins`` also has a copy at its place (id + 1000)."""
    from cropland.config import SplitConfig
    from cropland.split import make_splits

    rows = [(p, 2019, -100 + 0.07 * p, 50.0, label) for p, label in records]
    rows += [(p + 1000, 2019, -100 + 0.07 * p, 50.0, label) for p, label in records if p in twins]
    table = pd.DataFrame(rows, columns=["point_id", "year", "lon", "lat", "label"])
    splits = make_splits(table, SplitConfig(), seed=0)
    assert set(splits.assignments) == set(table["point_id"])
    for p, _ in records:
        if p in twins:
            assert splits.assignments[p] == splits.assignments[p + 1000]
