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
        ({"colour": "red"}, r"colour: Extra inputs are not permitted"),
        ({"splits": {"training": 0.8, "validation": 0.15, "test": 0.15}}, r"sum to 1"),
        ({"render": {"index_range": [0.5, 0.5]}}, r"render.index_range: .*low < high, got \[0.5, 0.5\]"),
        ({"render": {"index_range": [1, -1]}}, r"render.index_range: .*low < high"),
    ],
)
def test_bad_configuration_is_explained(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(BASE | change)


def test_missing_points_file(tmp_path):
    with pytest.raises(ConfigError, match=r"points.path: .*nope.csv does not exist"):
        parse_config(BASE | {"points": {"path": "nope.csv"}}, base=tmp_path)


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("years: [2019\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


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
