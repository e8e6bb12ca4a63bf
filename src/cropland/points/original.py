"""Import and export of the original point-list format (``points_ALL_categories_2019.csv``).

The original list has one row per point and month::

    ,Point_ID,Region,Province Code,Crop Type,Month Start Date,Month End Date,ACI Crop ID,
    Longitude,Latitude,File Name,Available

Importing gives two tables: the points table (one row per point and year, see
:mod:`cropland.points.table`) and a *months* table (``point_id, year, month, available,
file_name, line``) that keeps which monthly images the original kept.

Every row that cannot be imported is reported with its line number (the header is line 1)
and is never dropped silently: missing or impossible coordinates, points outside Canada,
unknown classes, unknown province codes, bad dates, and rows that contradict the other rows
of their point. Oddities that do not stop a row (its Region disagrees with its Province
Code, the offline lookup finds another province, the file name differs from the one the row
implies) are reported as warnings.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from cropland.core.classes import CropClass, get_class
from cropland.core.naming import MAX_POINT_ID, SampleName
from cropland.core.provinces import PROVINCES
from cropland.errors import CroplandError, PointsError
from cropland.io import atomic_path, write_table
from cropland.points.provinces import DEFAULT_TOLERANCE_KM, locate
from cropland.points.table import validate_points

log = logging.getLogger(__name__)

ORIGINAL_COLUMNS = [
    "Point_ID", "Region", "Province Code", "Crop Type", "Month Start Date", "Month End Date",
    "ACI Crop ID", "Longitude", "Latitude", "File Name", "Available",
]
MONTH_COLUMNS = ["point_id", "year", "month", "available", "file_name", "line"]
_REGION_CODE = {name.lower(): code for code, name in PROVINCES.items()}


@dataclass(frozen=True)
class Issue:
    """One problem of one row: ``line`` is the line number in the file (header: 1)."""

    line: int
    point_id: int | None
    kind: str
    message: str
    severity: str = "error"  # error: the row is not imported; warning: it is


@dataclass
class ImportReport:
    """What an import kept and every problem it met."""

    source: str
    n_rows: int = 0
    n_rows_imported: int = 0
    n_points: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def to_frame(self) -> pd.DataFrame:
        """The issues as a table (line, point_id, kind, severity, message)."""
        cols = ["line", "point_id", "kind", "severity", "message"]
        return pd.DataFrame([{c: getattr(i, c) for c in cols} for i in self.issues], columns=cols)

    def summary(self, examples: int = 3) -> str:
        """Counts per kind with the first line numbers of each."""
        lines = [(f"{self.source}: {self.n_rows} rows, {self.n_rows_imported} imported, "
                  f"{self.n_points} points; {len(self.errors)} rows rejected, "
                  f"{len(self.warnings)} warnings")]
        df = self.to_frame()
        for (severity, kind), group in df.groupby(["severity", "kind"], sort=True):
            first = ", ".join(str(n) for n in group["line"].head(examples))
            lines.append(f"  {severity} {kind}: {len(group)} rows (lines {first}"
                         f"{', ...' if len(group) > examples else ''}): "
                         f"{group['message'].iloc[0]}")
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        """Raise :class:`PointsError` listing the rejected rows, if there are any."""
        if self.errors:
            raise PointsError(
                self.summary() + "\nfix these rows in the file, or import without --strict "
                "to keep the valid rows"
            )


@dataclass(frozen=True)
class OriginalPoints:
    """An imported original point list."""

    points: pd.DataFrame  # the points table
    months: pd.DataFrame  # MONTH_COLUMNS
    report: ImportReport


def import_original(
    path: str | Path, tolerance_km: float = DEFAULT_TOLERANCE_KM, strict: bool = False
) -> OriginalPoints:
    """Read an original point list; ``strict`` raises if any row is rejected."""
    path = Path(path)
    raw = _read(path)
    report = ImportReport(source=str(path), n_rows=len(raw))
    rows, issues = _parse_rows(raw)
    report.issues += issues
    rows = _check_geography(rows, report, tolerance_km)
    rows = _check_consistency(rows, report)
    report.issues.sort(key=lambda i: (i.line, i.kind))
    points = validate_points(
        rows.drop_duplicates(["point_id", "year"])[
            ["point_id", "year", "lon", "lat", "province", "aci_code"]], str(path))
    months = rows[MONTH_COLUMNS].sort_values(["point_id", "year", "month"], ignore_index=True)
    report.n_rows_imported, report.n_points = len(rows), points["point_id"].nunique()
    log.info("%s", report.summary())
    if strict:
        report.raise_for_errors()
    return OriginalPoints(points=points, months=months, report=report)


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise PointsError(f"point list {path} does not exist; check the path")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise PointsError(f"{path} is not a readable CSV file: {e}") from None
    missing = [c for c in ORIGINAL_COLUMNS if c not in raw.columns]
    if missing:
        raise PointsError(f"{path}: missing column(s) {missing}; the original format has "
                          f"{ORIGINAL_COLUMNS}")
    return raw


def _parse_rows(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[Issue]]:
    """Parse each row; rows with an error are left out and reported."""
    lon = pd.to_numeric(raw["Longitude"].str.strip(), errors="coerce")
    lat = pd.to_numeric(raw["Latitude"].str.strip(), errors="coerce")
    date = pd.to_datetime(raw["Month Start Date"].str.strip(), format="%Y-%m-%d",
                          errors="coerce")
    issues: list[Issue] = []
    good = []
    columns = zip(raw["Point_ID"], raw["Region"], raw["Province Code"], raw["Crop Type"],
                  raw["Month Start Date"], date, raw["ACI Crop ID"], raw["Longitude"],
                  raw["Latitude"], lon, lat, raw["File Name"], raw["Available"], strict=True)
    for i, row in enumerate(columns):
        parsed, row_issues = _parse_row(i + 2, *row)
        issues += row_issues
        if parsed is not None:
            good.append(parsed)
    cols = ["line", "point_id", "year", "month", "lon", "lat", "province", "aci_code",
            "region", "available", "file_name"]
    return pd.DataFrame(good, columns=cols), issues


@cache
def _class_of(code: str, crop: str) -> tuple[CropClass | None, str]:
    """The class named by an ACI code and a crop type, or None and why not."""
    try:
        cls, named = get_class(code), get_class(crop)
    except CroplandError as e:
        return None, str(e)
    if cls.code != named.code:
        return None, f"Crop Type {crop!r} is not ACI code {code} ({cls.name})"
    return cls, ""


def _parse_row(line: int, pid, region, prov, crop, start, date, code, lon_text, lat_text,
               x, y, name, avail) -> tuple[tuple | None, list[Issue]]:
    issues: list[Issue] = []
    point_id = int(pid) if pid.strip().isdigit() and int(pid) <= MAX_POINT_ID else None

    def error(kind: str, message: str) -> tuple[None, list[Issue]]:
        issues.append(Issue(line, point_id, kind, message))
        return None, issues

    if point_id is None:
        return error("bad_point_id", f"Point_ID {pid!r} is not a whole number from 0 to {MAX_POINT_ID}")
    if pd.isna(x) or pd.isna(y):
        return error("missing_coordinates",
                     f"Longitude/Latitude {lon_text!r}/{lat_text!r} missing or not numbers")
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        return error("impossible_coordinates", f"Longitude/Latitude {x}/{y} out of range")
    cls, why = _class_of(code.strip(), crop.strip())
    if cls is None:
        return error("unknown_class", why)
    if prov not in PROVINCES:
        return error("unknown_province", f"Province Code {prov!r} is not one of "
                                         f"{', '.join(PROVINCES)}")
    if pd.isna(date):
        return error("bad_date", f"Month Start Date {start!r} is not YYYY-MM-DD")
    if _REGION_CODE.get(region.strip().lower()) != prov:
        issues.append(Issue(line, point_id, "region_mismatch",
                            f"Region {region!r} is not Province Code {prov}", "warning"))
    available = {"TRUE": True, "FALSE": False}.get(avail.strip().upper(), pd.NA)
    if available is pd.NA:
        issues.append(Issue(line, point_id, "available",
                            f"Available {avail!r} is not TRUE or FALSE", "warning"))
    expected = f"POINT_{point_id}_{date.year:04d}{date.month:02d}_{prov}_{cls.name}"
    if name.strip().upper() != expected:
        issues.append(Issue(line, point_id, "file_name",
                            f"File Name {name!r} differs from {expected}", "warning"))
    return (line, point_id, date.year, date.month, float(x), float(y), prov, cls.code,
            region, available, name), issues


def _check_geography(rows: pd.DataFrame, report: ImportReport, tolerance_km: float
                     ) -> pd.DataFrame:
    """Reject rows outside Canada; warn where the lookup finds another province."""
    where = rows.drop_duplicates(["lon", "lat"])[["lon", "lat"]]
    found = pd.Series(locate(where["lon"], where["lat"], tolerance_km),
                      index=pd.MultiIndex.from_frame(where))
    lookup = found.reindex(pd.MultiIndex.from_frame(rows[["lon", "lat"]])).to_numpy()
    outside = pd.isna(lookup) | ~np.isin(lookup.astype(str), list(PROVINCES))
    for line, pid, lon, lat, got in rows.loc[outside, ["line", "point_id", "lon", "lat"]].assign(
            got=lookup[outside]).itertuples(index=False):
        where_msg = f"in {got}, not a province" if got else f"more than {tolerance_km:g} km " \
                                                             "outside Canada"
        report.issues.append(Issue(line, pid, "outside_canada",
                                   f"point ({lon}, {lat}) is {where_msg}"))
    other = ~outside & (lookup != rows["province"].to_numpy())
    for line, pid, prov, got in rows.loc[other, ["line", "point_id", "province"]].assign(
            got=lookup[other]).itertuples(index=False):
        report.issues.append(Issue(line, pid, "province_lookup",
                                   f"Province Code {prov}, but the point lies in {got}",
                                   "warning"))
    return rows[~outside]


def _check_consistency(rows: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Reject rows whose position, province or class differs from their point's first row,
    and repeated months."""
    keys = ["lon", "lat", "province", "aci_code"]
    first = rows.groupby(["point_id", "year"])[keys].transform("first")
    differs = (rows[keys] != first).any(axis=1)
    repeated = rows.duplicated(["point_id", "year", "month"])
    for line, pid in rows.loc[differs, ["line", "point_id"]].itertuples(index=False):
        report.issues.append(Issue(line, pid, "inconsistent_point",
                                   "position, province or class differs from the point's "
                                   "first row that year"))
    for line, pid in rows.loc[repeated & ~differs, ["line", "point_id"]].itertuples(index=False):
        report.issues.append(Issue(line, pid, "repeated_month",
                                   "the point already has a row for this month"))
    return rows[~differs & ~repeated]


def export_original(
    points: pd.DataFrame,
    path: str | Path,
    months: pd.DataFrame | None = None,
    default_months: tuple[int, ...] = (6, 7, 8, 9, 10),
) -> Path:
    """Write a points table in the original format, one row per point and month.

    ``months`` (from :func:`import_original`) gives the months and their ``Available``
    flags; without it every point gets ``default_months`` with an empty ``Available``.
    """
    points = validate_points(points)
    if months is None:
        months = points[["point_id", "year"]].merge(
            pd.DataFrame({"month": list(default_months)}), how="cross")
        months["available"] = pd.NA
    rows = months[["point_id", "year", "month", "available"]].merge(
        points, on=["point_id", "year"], how="inner", validate="many_to_one")
    rows = rows.sort_values(["point_id", "year", "month"], ignore_index=True)
    last_day = [calendar.monthrange(y, m)[1] for y, m in zip(rows["year"], rows["month"], strict=True)]
    out = pd.DataFrame({
        "Point_ID": rows["point_id"],
        "Region": rows["province"].map(PROVINCES),
        "Province Code": rows["province"],
        "Crop Type": rows["label"].str.lower(),
        "Month Start Date": [f"{y:04d}-{m:02d}-01" for y, m in zip(rows["year"], rows["month"], strict=True)],
        "Month End Date": [f"{y:04d}-{m:02d}-{d:02d}"
                           for y, m, d in zip(rows["year"], rows["month"], last_day, strict=True)],
        "ACI Crop ID": rows["aci_code"],
        "Longitude": rows["lon"],
        "Latitude": rows["lat"],
        "File Name": [SampleName(p, y, m, pr, lb).stem for p, y, m, pr, lb in
                      zip(rows["point_id"], rows["year"], rows["month"], rows["province"],
                          rows["label"], strict=True)],
        "Available": rows["available"].map({True: "TRUE", False: "FALSE"}).fillna(""),
    })
    path = Path(path)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=True)
    return path


def read_months(path: str | Path) -> pd.DataFrame:
    """Read a months table written by ``cropland points import --months``."""
    path = Path(path)
    if not path.exists():
        raise PointsError(f"months table {path} does not exist; check the path")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in MONTH_COLUMNS[:4] if c not in df.columns]
    if missing:
        raise PointsError(f"{path}: missing column(s) {missing}; expected {MONTH_COLUMNS}")
    df["available"] = df["available"].astype("boolean")
    return df


def write_months(months: pd.DataFrame, path: str | Path) -> Path:
    """Write a months table (``.csv`` or ``.parquet``) atomically."""
    return write_table(months.astype({"available": "boolean"}), path)
