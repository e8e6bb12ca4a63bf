"""Threshold configuration files, and the `cropland curate` commands."""

from __future__ import annotations

import os

import pytest
import yaml
from typer.testing import CliRunner

from cropland.cli import app
from cropland.config import CurateConfig
from cropland.curate.config import curate_config_for, load_curate_config
from cropland.curate.store import Store
from cropland.errors import ConfigError


def test_defaults_and_documentation():
    assert load_curate_config(None) == CurateConfig()
    for name, field in CurateConfig.model_fields.items():
        assert field.description, f"{name} is not documented"


def test_curate_section_of_a_build_config(tmp_path):
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({"years": [2019], "curate": {"cloud_reject": 0.4}}))
    assert load_curate_config(path).cloud_reject == 0.4


def test_own_file_and_build_config_without_section(tmp_path):
    own = tmp_path / "curate.yaml"
    own.write_text("nodata_reject: 0.5\nstripe_review: 12\n")
    cfg = load_curate_config(own)
    assert (cfg.nodata_reject, cfg.stripe_review) == (0.5, 12)
    build = tmp_path / "build.yaml"  # no thresholds in it: refused, naming what is not one
    build.write_text(yaml.safe_dump({"years": [2019], "points": {"synthetic_per_class": 2}}))
    with pytest.raises(ConfigError, match="points, years: unknown fields; known fields: cloud_review,"):
        load_curate_config(build)


def test_dataset_thresholds_come_from_its_build_config(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"years": [2019], "curate": {"cloud_reject": 0.3}}))
    assert curate_config_for(tmp_path).cloud_reject == 0.3
    assert curate_config_for(tmp_path / "elsewhere") == CurateConfig()  # no config.yaml: defaults


@pytest.mark.parametrize(("text", "message"), [
    ("cloud_reject: 2\n", "cloud_reject: Input should be less than or equal to 1"),
    ("cloud_review: 0.5\ncloud_reject: 0.1\n", "cloud_review (0.5) must not exceed cloud_reject"),
    ("clouds: 0.1\n", "clouds: unknown field; known fields: cloud_review, cloud_reject,"),
    ("cloud_rejct: 0.1\n", "cloud_rejct: unknown field; did you mean cloud_reject?"),
    ("- 1\n", "must hold a mapping"),
    ("a: [\n", "not valid YAML"),
])
def test_invalid_configs_name_the_problem(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_curate_config(path)


def test_token_add_prints_a_working_token(dataset, tmp_path):
    db = tmp_path / "t.sqlite"
    result = CliRunner().invoke(app, ["curate", "token", "add", "carol", "--db", str(db)])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert len(token) >= 32 and Store(db).reviewer_for_token(token) == "carol"
    listing = CliRunner().invoke(app, ["curate", "token", "list", "--db", str(db)])
    assert "carol" in listing.output and "active" in listing.output
    CliRunner().invoke(app, ["curate", "token", "revoke", "carol", "--db", str(db)])
    assert Store(db).reviewer_for_token(token) is None


def test_score_command(dataset, tmp_path):
    db = tmp_path / "s.sqlite"
    result = CliRunner().invoke(app, ["curate", "score", str(dataset), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "12 samples (12 scored now): 4 accepted, 4 review, 4 rejected" in result.output
    again = CliRunner().invoke(app, ["curate", "score", str(dataset), "--db", str(db)])
    assert "(0 scored now)" in again.output  # cached until the file or thresholds change
    changed = sorted((dataset / "tif").rglob("*.tif"))[0]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    point, year = changed.stem.split("_")[1], changed.stem.split("_")[2][:4]
    mates = list((dataset / "tif").rglob(f"POINT_{point}_{year}??_*.tif"))  # scored together
    third = CliRunner().invoke(app, ["curate", "score", str(dataset), "--db", str(db)])
    assert f"({len(mates)} scored now)" in third.output and len(mates) < 12


def test_dataset_argument_means_serve(dataset):
    result = CliRunner().invoke(app, ["curate", str(dataset), "--port", "notaport"])
    assert result.exit_code == 2 and "Usage: cropland curate serve" in result.output


def test_export_curated_command(dataset, tmp_path):
    db = tmp_path / "e.sqlite"
    Store(db).decide("d1", "alice", ["POINT_2_201906_MB_CORN"], "reject", "haze")
    out = tmp_path / "curated"
    result = CliRunner().invoke(app, ["export", str(dataset), "--curated", "--out", str(out),
                                      "--db", str(db), "--workers", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "7 samples kept, 1 rejected by reviewers, 4 rejected automatically" in text
    assert len(list((out / "tif").rglob("*.tif"))) == 7
    assert not (out / "tif/2019/CORN/POINT_2_201906_MB_CORN.tif").exists()


def test_build_config_carries_a_curate_section():
    from cropland.config import parse_config

    base = {"years": [2019], "points": {"synthetic_per_class": 1}}
    assert parse_config(base).curate is None
    cfg = parse_config({**base, "curate": {"cloud_reject": 0.3}})
    assert cfg.curate.cloud_reject == 0.3
    with pytest.raises(ConfigError, match="curate.cloud_reject"):
        parse_config({**base, "curate": {"cloud_reject": 3}})


def test_dataset_config_section_sets_the_thresholds(tmp_path):
    from tests.curate.curate_fakes import make_dataset, standard_specs

    root = make_dataset(tmp_path / "ds", standard_specs())
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["curate"] = {"cloud_review": 0.6, "cloud_reject": 0.7}  # the 0.25 and 0.5 clouds pass
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["curate", "score", str(root)])
    # defaults give 4 accepted, 4 review, 4 rejected; the two cloud rejections now pass
    assert "12 samples (12 scored now): 6 accepted, 4 review, 2 rejected" in result.output
