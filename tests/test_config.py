from pathlib import Path

import pytest

from cropland.config import demo_config_path, load_config, parse_config
from cropland.errors import ConfigError

BASE = {"years": [2019], "points": {"synthetic_per_class": 2}}


def test_demo_config_is_valid(tmp_path):
    cfg = load_config(demo_config_path(), output=str(tmp_path))
    assert cfg.patch_size == 64 and cfg.crs == "EPSG:3978" and len(cfg.classes) == 10
    assert cfg.output == tmp_path


def test_classes_by_name_or_code():
    cfg = parse_config(BASE | {"classes": ["spring wheat", 133, "135"]})
    assert cfg.classes == ["SPRING_WHEAT", "BARLEY", "MILLET"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": ["BARLEY", "BANANA"]}, r"classes: unknown crop class 'BANANA'"),
        ({"months": [6, 13]}, r"months: months must be 1-12, got \[13\]"),
        ({"patch_size": -64}, r"patch_size: Input should be greater than 0"),
        ({"crs": "EPSG:4326"}, r"crs: .*not projected"),
        ({"points": {}}, r"points: give exactly one of"),
        ({"colour": "red"}, r"colour: unknown field; known fields: name, years, months"),
        ({"pach_size": 32}, r"pach_size: unknown field; did you mean patch_size\?"),
        ({"source": {"kind": "stac", "levl": "L1C"}}, r"source.levl: unknown field; did you mean level\?"),
        ({"months": []}, r"months: List should have at least 1 item"),
        ({"classes": []}, r"classes: List should have at least 1 item"),
        ({"resolution": float("inf")}, r"resolution: Input should be a finite number"),
        ({"resolution": 1e9}, r"resolution: Input should be less than or equal to 1000"),
        ({"patch_size": 100_000}, r"patch_size: Input should be less than or equal to 1024"),
        ({"points": {"synthetic_per_class": 10**9}}, r"points.synthetic_per_class: .*less than or equal to 10000"),
        ({"seed": 2**70}, r"seed: Input should be less than 4294967296"),
        ({"render": {"rgb_max": float("nan")}}, r"render.rgb_max: Input should be a finite number"),
        (
            {"years": [2099, 2100], "source": {"kind": "stac"}},
            r"years: \[2099, 2100\] are in the future.*only the simulator",
        ),
        ({"years": "2019"}, r"years: Input should be a valid list \(got '2019'\)"),
        ({"splits": {"training": 0.8, "validation": 0.15, "test": 0.15}}, r"sum to 1"),
        ({"render": {"index_range": [0.5, 0.5]}}, r"render.index_range: .*low < high, got \[0.5, 0.5\]"),
        ({"render": {"index_range": [1, -1]}}, r"render.index_range: .*low < high"),
    ],
)
def test_bad_configuration_is_explained(change, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_config(BASE | change)
    assert "\n" not in str(error.value)


def test_every_wrong_field_is_named_on_one_line():
    with pytest.raises(ConfigError) as error:
        parse_config(BASE | {"months": [0], "patch_size": "big", "extra": 1})
    assert str(error.value) == (
        "config: months: months must be 1-12, got [0]; patch_size: Input should be a "
        "valid integer, unable to parse string as an integer (got 'big'); extra: unknown field; "
        "known fields: name, years, months, classes, points, patch_size, resolution, crs, "
        "resampling, source, indices, render, splits, export, output, seed, curate")


def test_the_simulator_may_build_years_to_come():
    assert parse_config(BASE | {"years": [2099]}).future_years == [2099]


def test_missing_points_file(tmp_path):
    with pytest.raises(ConfigError, match=r"points.path: .*nope.csv does not exist"):
        parse_config(BASE | {"points": {"path": "nope.csv"}}, base=tmp_path)


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("years: [2019\n")
    with pytest.raises(ConfigError, match="not valid YAML at line 2, column 1"):
        load_config(bad)
    with pytest.raises(ConfigError, match="is a folder; give a YAML file"):
        load_config(tmp_path)
    bad.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(bad)


def test_output_naming_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(ConfigError, match=r"output: .*out is a file; give a folder"):
        parse_config(BASE | {"output": "out"}, base=tmp_path)


def test_every_field_is_documented():
    from cropland.config import BuildConfig

    schema = BuildConfig.model_json_schema()
    undocumented = []

    def walk(properties, prefix=""):
        for name, spec in properties.items():
            refs = [spec.get("$ref")] + [s.get("$ref") for s in spec.get("anyOf", [])]
            ref = next((r for r in refs if r), None)
            if ref:
                walk(schema["$defs"][ref.rsplit("/", 1)[-1]]["properties"], f"{prefix}{name}.")
            elif not spec.get("description"):
                undocumented.append(prefix + name)

    walk(schema["properties"])
    assert undocumented == []
    assert "seed" in schema["properties"] and "source" in schema["properties"]


SHIPPED = sorted(p for p in (Path(__file__).parents[1] / "configs").glob("*.yaml")
                 if p.name != "points-sample-example.yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_build_configs_validate(path):
    """Every ready configuration validates, with its source's options; the ones that reproduce
    the published release are Level-1C at the released PNGs' 65 px."""
    import yaml

    from cropland.config import BuildConfig
    from cropland.sources import make_source

    cfg = BuildConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    source = make_source(cfg)
    if path.name.startswith("published-l1c"):
        assert (cfg.source.level, cfg.patch_size, cfg.source.max_scene_cloud) == ("L1C", 65, 5)
    if path.name.startswith("l2a-2017-now"):
        assert cfg.source.level == "L2A" and cfg.years[0] == 2017
        assert source.s3.endpoint == "https://eodata.dataspace.copernicus.eu"
