"""The points table: one row per point and year, the spine's input.

======== ======= ==============================================================
column   dtype   meaning
======== ======= ==============================================================
point_id int64   stable identifier of a geographic point (a field centre), 0-999999999
year     int64   crop year of the label
lon      float64 WGS84 longitude of the field centre
lat      float64 WGS84 latitude
province str     province code (AB BC MB NB NL NS ON PE QC SK)
aci_code int64   Annual Crop Inventory code of the label that year
label    str     class folder name (``SPRING_WHEAT``), derived from ``aci_code``
======== ======= ==============================================================

A point keeps its id, position and province across years; its label may change (crop
rotation). Stored as CSV or Parquet, chosen by the file extension. Parquet files are
GeoParquet: a ``geometry`` column (WKB points, WGS84 lon/lat) follows the columns above, so
GeoPandas, QGIS and DuckDB open them as point layers; readers here ignore it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cropland.core.classes import get_class
from cropland.core.naming import MAX_POINT_ID
from cropland.core.provinces import CANADA_BOUNDS, PROVINCES
from cropland.errors import PointsError, UnknownClassError
from cropland.io import atomic_path, write_table

COLUMNS: dict[str, str] = {
    "point_id": "int64",
    "year": "int64",
    "lon": "float64",
    "lat": "float64",
    "province": "str",
    "aci_code": "int64",
    "label": "str",
}


def validate_points(df: pd.DataFrame, source: str = "points table") -> pd.DataFrame:
    """Check columns and values; return a copy with canonical dtypes and row order."""
    missing = [c for c in COLUMNS if c not in df.columns and c != "label"]
    if missing:
        raise PointsError(f"{source}: missing column(s) {missing}; expected {list(COLUMNS)}")
    if df.empty:
        raise PointsError(f"{source} holds no points; add one row per point and year "
                          f"with the columns {list(COLUMNS)}")
    df = df.copy()
    for column in ("point_id", "year", "aci_code"):
        values = pd.to_numeric(df[column], errors="coerce")
        fractional = values.isna() | (values % 1 != 0)
        if fractional.any():
            raise PointsError(f"{source}: {column} must be a whole number in every row; rows "
                              f"{_rows(fractional)} hold {df.loc[fractional, column].head(3).tolist()}")
    try:
        labels = [get_class(int(c)).name for c in df["aci_code"]]
    except UnknownClassError as e:
        raise PointsError(f"{source}: {e}") from None
    df["label"] = labels
    try:
        df = df[list(COLUMNS)].astype(COLUMNS)
    except (TypeError, ValueError, OverflowError) as e:
        raise PointsError(f"{source}: a column has values of the wrong type ({e}); "
                          f"expected {COLUMNS}") from None
    problems = []
    bad_ids = ~df["point_id"].between(0, MAX_POINT_ID)
    if bad_ids.any():
        problems.append(f"point ids outside 0-{MAX_POINT_ID} (9 digits at most) in rows "
                        f"{_rows(bad_ids)}: renumber them")
    bad_coords = ~df["lon"].between(-180, 180) | ~df["lat"].between(-90, 90)
    if bad_coords.any():
        problems.append(f"impossible coordinates in rows {_rows(bad_coords)}")
    bad_prov = ~df["province"].isin(list(PROVINCES))
    if bad_prov.any():
        problems.append(f"unknown province codes in rows {_rows(bad_prov)}")
    dup = df.duplicated(["point_id", "year"])
    if dup.any():
        problems.append(f"repeated (point_id, year) in rows {_rows(dup)}")
    moved = df.groupby("point_id")[["lon", "lat", "province"]].nunique().max(axis=1) > 1
    if moved.any():
        problems.append(f"points whose position or province changes between years: "
                        f"{list(moved[moved].index[:10])}")
    if problems:
        raise PointsError(f"{source}: " + "; ".join(problems))
    return df.sort_values(["point_id", "year"]).reset_index(drop=True)


def outside_canada(points: pd.DataFrame) -> pd.DataFrame:
    """The points (one row each) outside the bounds of Canada's provinces: Paris, the South
    Pole, swapped longitude and latitude, ... (a border point stays inside)."""
    west, south, east, north = CANADA_BOUNDS
    inside = points["lon"].between(west, east) & points["lat"].between(south, north)
    return points[~inside].drop_duplicates("point_id")


def _rows(mask: pd.Series) -> list[int]:
    return [int(i) for i in mask[mask].index[:10]]


def read_points(path: str | Path) -> pd.DataFrame:
    """Read and validate a points table (``.csv`` or ``.parquet``)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise PointsError(f"points file {path} {what}; check `points.path` in the config")
    expected = f"expected a CSV with the columns {list(COLUMNS)}, one row per point and year"
    if path.suffix != ".parquet" and b"\0" in path.open("rb").read(4096):
        raise PointsError(f"{path} is a binary file, not a CSV; {expected}")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise PointsError(f"{path} is empty; {expected}") from None
    except pd.errors.ParserError as e:
        raise PointsError(f"{path} is not a well-formed CSV ({str(e).strip()}); {expected}") from None
    except UnicodeDecodeError:
        raise PointsError(f"{path} is not UTF-8 text: save it as UTF-8; {expected}") from None
    except (pa.ArrowException, OSError) as e:
        raise PointsError(f"{path} is not a readable Parquet file ({e}); {expected}") from None
    return validate_points(df, str(path))


def write_points(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write a points table atomically (``.parquet``: GeoParquet)."""
    df, path = validate_points(df), Path(path)
    if path.suffix != ".parquet":
        return write_table(df, path)
    with atomic_path(path) as tmp:
        pq.write_table(geoparquet_table(df), tmp)
    return path


def geoparquet_table(df: pd.DataFrame) -> pa.Table:
    """``df`` with a WKB point ``geometry`` column and GeoParquet 1.1 metadata (CRS: OGC:CRS84)."""
    try:
        import shapely
    except ImportError:
        raise PointsError("writing a .parquet points table (GeoParquet) needs shapely: "
                          "pip install 'cropland[points]', or write .csv") from None
    wkb = shapely.to_wkb(shapely.points(df["lon"].to_numpy(), df["lat"].to_numpy()))
    table = pa.Table.from_pandas(df, preserve_index=False).append_column("geometry", pa.array(wkb, pa.binary()))
    bbox = [df["lon"].min(), df["lat"].min(), df["lon"].max(), df["lat"].max()] if len(df) else []
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": {
        "encoding": "WKB", "geometry_types": ["Point"], **({"bbox": [float(v) for v in bbox]} if bbox else {}),
    }}}  # no "crs" key: GeoParquet's default, OGC:CRS84 (lon, lat on WGS84)
    return table.replace_schema_metadata({**table.schema.metadata, b"geo": json.dumps(geo).encode()})
