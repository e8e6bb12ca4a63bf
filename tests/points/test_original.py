"""Import and export of the original point-list CSV format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cropland.errors import PointsError
from cropland.points.original import export_original, import_original, read_months, write_months

HEADER = ("Point_ID,Region,Province Code,Crop Type,Month Start Date,Month End Date,ACI Crop ID,"
          "Longitude,Latitude,File Name,Available")


def test_real_2019_list_imports_4984_points(original_csv):
    raw = pd.read_csv(original_csv)
    result = import_original(original_csv)
    points, months, report = result.points, result.months, result.report
    assert len(points) == points["point_id"].nunique() == 4984
    assert (points["year"] == 2019).all()
    assert report.errors == [] and report.n_rows == report.n_rows_imported == 24920
    # Classes, provinces and months agree with the file, counted independently.
    per_point = raw.drop_duplicates("Point_ID").set_index("Point_ID")
    table = points.set_index("point_id")
    assert (table["label"].str.lower() == per_point["Crop Type"]).all()
    assert (table["aci_code"] == per_point["ACI Crop ID"]).all()
    assert (table["province"] == per_point["Province Code"]).all()
    assert points["label"].value_counts().to_dict() == {
        "SOYBEAN": 968, "OAT": 780, "POTATO": 772, "ORCHARD": 522, "CORN": 516,
        "PASTURE": 506, "MIXEDWOOD": 405, "BARLEY": 396, "MILLET": 89, "SORGHUM": 30}
    assert len(months) == 24920 and months["available"].sum() == raw["Available"].sum() == 18360
    assert sorted(months["month"].unique()) == [6, 7, 8, 9, 10]
    # The file's own inconsistencies are reported as warnings with their line numbers.
    region = [i for i in report.warnings if i.kind == "region_mismatch"]
    assert len(region) == 670
    assert {i.line for i in region} == set(
        raw.index[(raw["Region"] == "Manitoba") & (raw["Province Code"] == "QC")] + 2)


def write_list(path: Path, rows: list[str]) -> Path:
    lines = ["," + HEADER] + [f"{i},{row}" for i, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = "1,Alberta,AB,barley,2019-0{m}-01,2019-0{m}-30,133,-114.6319025,52.32922162,POINT_1_20190{m}_AB_BARLEY,TRUE"


def test_bad_rows_are_reported_with_line_numbers(tmp_path):
    rows = [
        GOOD.format(m=6),                                                     # line 2: ok
        GOOD.format(m=7),                                                     # line 3: ok
        "2,Alberta,AB,corn,2019-06-01,2019-06-30,147,,52.3,POINT_2_201906_AB_CORN,TRUE",
        "3,Alberta,AB,corn,2019-06-01,2019-06-30,147,-114.6,95.0,POINT_3_201906_AB_CORN,TRUE",
        "4,Alberta,AB,corn,2019-06-01,2019-06-30,147,-93.27,44.98,POINT_4_201906_AB_CORN,TRUE",
        "5,Alberta,AB,quinoa2,2019-06-01,2019-06-30,999,-114.6,52.3,POINT_5_201906_AB_X,TRUE",
        "6,Alberta,AB,corn,2019-06-01,2019-06-30,133,-114.6,52.3,POINT_6_201906_AB_CORN,TRUE",
        "7,Alberta,XX,corn,2019-06-01,2019-06-30,147,-114.6,52.3,POINT_7_201906_XX_CORN,TRUE",
        "8,Alberta,AB,corn,June 2019,2019-06-30,147,-114.6,52.3,POINT_8_201906_AB_CORN,TRUE",
        GOOD.format(m=8).replace("-114.6319025", "-114.7"),                  # line 11: moved
        "9,Quebec,AB,corn,2019-06-01,2019-06-30,147,-114.6,52.3,POINT_9_201906_AB_CORN,maybe",
    ]
    result = import_original(write_list(tmp_path / "list.csv", rows))
    errors = {(i.line, i.kind) for i in result.report.errors}
    assert errors == {
        (4, "missing_coordinates"), (5, "impossible_coordinates"), (6, "outside_canada"),
        (7, "unknown_class"), (8, "unknown_class"), (9, "unknown_province"), (10, "bad_date"),
        (11, "inconsistent_point"),
    }
    warnings = {(i.line, i.kind) for i in result.report.warnings}
    assert warnings == {(12, "region_mismatch"), (12, "available")}
    assert list(result.points["point_id"]) == [1, 9]
    assert list(result.months["line"]) == [2, 3, 12]
    summary = result.report.summary()
    assert "outside_canada: 1 rows (lines 6)" in summary and "11 rows, 3 imported" in summary
    with pytest.raises(PointsError, match=r"unknown_class: 2 rows \(lines 7, 8\)"):
        import_original(tmp_path / "list.csv", strict=True)


def test_wrong_header_and_missing_file(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(PointsError, match="missing column"):
        import_original(tmp_path / "x.csv")
    with pytest.raises(PointsError, match="does not exist"):
        import_original(tmp_path / "nope.csv")


def test_export_reproduces_the_original_lines(original_csv, tmp_path):
    result = import_original(original_csv)
    months_path = write_months(result.months, tmp_path / "months.parquet")
    out = export_original(result.points, tmp_path / "export.csv", read_months(months_path))
    original = original_csv.read_text(encoding="utf-8").splitlines()
    exported = out.read_text(encoding="utf-8").splitlines()
    assert exported[0] == original[0] and len(exported) == len(original)
    differ = [i + 1 for i, (a, b) in enumerate(zip(original, exported, strict=True)) if a != b]
    # Only the rows whose Region contradicts their Province Code differ: export writes the
    # province's name.
    region_lines = {i.line for i in result.report.warnings if i.kind == "region_mismatch"}
    assert set(differ) == region_lines
    again = import_original(out)
    pd.testing.assert_frame_equal(again.points, result.points)
    pd.testing.assert_frame_equal(again.months.drop(columns="line"),
                                  result.months.drop(columns="line"))


def test_export_without_months_writes_june_to_october(tmp_path):
    points = pd.DataFrame({"point_id": [7], "year": [2020], "lon": [-97.1], "lat": [49.9],
                           "province": ["MB"], "aci_code": [153]})
    out = export_original(points, tmp_path / "x.csv")
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df["File Name"]) == [f"POINT_7_20200{m}_MB_CANOLA" for m in range(6, 10)] + [
        "POINT_7_202010_MB_CANOLA"]
    assert list(df["Month End Date"])[:2] == ["2020-06-30", "2020-07-31"]
    assert set(df["Available"]) == {""} and set(df["Crop Type"]) == {"canola"}
