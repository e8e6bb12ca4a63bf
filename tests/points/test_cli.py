"""`cropland points ...` end to end, and the sampling configuration."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cropland.cli import app
from cropland.errors import ConfigError
from cropland.points.config import load_sample_config
from cropland.points.table import read_points

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, ["points", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def write_config(path: Path, **fields) -> Path:
    base = {"year": 2019, "aci": ["aci_2019.tif"], "classes": ["CORN", "SOYBEAN"],
            "quota": 2, "min_spacing_m": 200, "output": "out/points.csv"}
    path.write_text(yaml.safe_dump({**base, **fields}))
    return path


def test_sample_label_map_export_provinces(tmp_path, aci_2019, aci_2020):
    cfg = write_config(tmp_path / "sample.yaml")
    out = invoke("sample", "--config", cfg)
    assert "wrote 4 points" in out and "CORN" in out
    points_csv = tmp_path / "out" / "points.csv"
    points = read_points(points_csv)
    assert points["label"].value_counts().to_dict() == {"CORN": 2, "SOYBEAN": 2}
    invoke("sample", "--config", cfg, "--output", tmp_path / "again.csv")
    pd.testing.assert_frame_equal(read_points(tmp_path / "again.csv"), points)

    out = invoke("label", points_csv, "--aci", f"2019={aci_2019}", "--aci", f"2020={aci_2020}",
                 "--output", tmp_path / "labels.csv", "--points-output", tmp_path / "all.csv")
    assert "8 of 8 point-years labelled; 2 points rotate" in out
    labels = pd.read_csv(tmp_path / "labels.csv")
    corn = labels[labels["point_id"].isin(points.loc[points["label"] == "CORN", "point_id"])]
    assert set(corn.loc[corn["year"] == 2020, "label"]) == {"OAT"} and corn["rotates"].all()
    assert len(read_points(tmp_path / "all.csv")) == 8

    out = invoke("map", tmp_path / "all.csv", "--png", tmp_path / "m.png", "--html",
                 tmp_path / "m.html", "--counts", tmp_path / "counts.csv")
    assert (tmp_path / "m.png").stat().st_size > 10_000 and (tmp_path / "m.html").exists()
    assert pd.read_csv(tmp_path / "counts.csv", index_col=0).loc["total", "total"] == 8

    invoke("export", tmp_path / "all.csv", "--output", tmp_path / "original.csv")
    original = pd.read_csv(tmp_path / "original.csv")
    assert len(original) == 8 * 5 and set(original["Province Code"]) == {"MB"}

    out = invoke("provinces", tmp_path / "original.csv", "--output", tmp_path / "fixed.csv")
    assert "4/4 points agree (100.00%)" in out


def test_import_reports_rejected_rows(tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text(
        ",Point_ID,Region,Province Code,Crop Type,Month Start Date,Month End Date,ACI Crop ID,"
        "Longitude,Latitude,File Name,Available\n"
        "0,1,Manitoba,MB,corn,2019-07-01,2019-07-31,147,-97.1,49.9,POINT_1_201907_MB_CORN,TRUE\n"
        "1,2,Manitoba,MB,corn,2019-07-01,2019-07-31,147,-97.1,,POINT_2_201907_MB_CORN,TRUE\n")
    out = invoke("import", csv, "--output", tmp_path / "p.parquet", "--months",
                 tmp_path / "m.csv", "--report", tmp_path / "issues.csv")
    assert "missing_coordinates: 1 rows (lines 3)" in out
    assert list(read_points(tmp_path / "p.parquet")["point_id"]) == [1]
    assert pd.read_csv(tmp_path / "issues.csv")["line"].tolist() == [3]
    assert pd.read_csv(tmp_path / "m.csv")["month"].tolist() == [7]
    result = runner.invoke(app, ["points", "import", str(csv), "--output",
                                 str(tmp_path / "x.csv"), "--strict"])
    assert result.exit_code != 0 and "lines 3" in str(result.exception)


def test_config_resolves_paths_and_explains_errors(tmp_path):
    cfg = load_sample_config(write_config(tmp_path / "a.yaml", quotas={"corn": 5}))
    assert cfg.aci == [str(tmp_path / "aci_2019.tif")] and cfg.output.parent == tmp_path / "out"
    assert cfg.quota_of("CORN") == 5 and cfg.quota_of("SOYBEAN") == 2
    bad = write_config(tmp_path / "b.yaml", centre_px=4, classes=["CORN", "NOT_A_CROP"],
                       earthengine={"region": [-100, 49, -99, 50]})
    with pytest.raises(ConfigError) as e:
        load_sample_config(bad)
    message = str(e.value)
    assert "centre_px: centre_px must be odd" in message
    assert "classes: unknown crop class 'NOT_A_CROP'" in message
    with pytest.raises(ConfigError, match="exactly one of `aci`"):
        load_sample_config(write_config(tmp_path / "c.yaml",
                                        earthengine={"region": [-100, 49, -99, 50]}))


def test_config_takes_aci_codes_as_yaml_integers(tmp_path):
    cfg = load_sample_config(write_config(tmp_path / "a.yaml", classes=[147, "soybean"],
                                          quotas={147: 7}))
    assert cfg.classes == ["CORN", "SOYBEAN"] and cfg.quota_of("CORN") == 7


def test_example_config_is_valid():
    path = Path(__file__).parents[2] / "configs" / "points-sample-example.yaml"
    cfg = load_sample_config(path)
    assert cfg.window_m == 640 and cfg.quota_of("CORN") == 100
