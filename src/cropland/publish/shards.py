"""Parquet shards in the Hugging Face layout: ``data/{view}/{split}-{i:05d}-of-{n:05d}.parquet``.

Two views (see docs/format.md, "Published release"):

* ``static``: one row per sample (a point in one month of one year) with its PNGs (Hugging
  Face ``Image`` structs of the original bytes) and, for a cropland dataset, its 18 channels
  (12 bands, 6 indices) as a float32 ``Array3D`` of shape (18, H, W), bit-exact.
* ``temporal``: one row per point and year with the months present and, per image type, the
  list of that year's PNGs (the 18-channel arrays stay in the static view, joined by
  ``sample_ids``).

Rows are in a fixed order (point, year, month), shards split a split's rows evenly and
row groups are fixed, so the same dataset gives byte-identical files (pyarrow writes no
timestamp; ``created_by`` names its version). The Hugging Face features are stored in the
schema metadata, so ``datasets`` decodes images, class labels and arrays.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress

from cropland.data.channels import TIF_CHANNELS
from cropland.data.readers import SPLITS
from cropland.data.shards import ARRAY_COLUMN, HF_SPLITS, VIEWS, image_column
from cropland.io import atomic_path
from cropland.publish.source import Source

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = {"static": 32, "temporal": 8}
DEFAULT_MAX_SHARD_MB = 256
_ARRAY_LEAF = f"{ARRAY_COLUMN}.list.element.list.element.list.element"
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_ARRAY = pa.list_(pa.list_(pa.list_(pa.float32())))


@dataclass(frozen=True)
class Shard:
    """One written shard: its path relative to the release, view, split and row count."""

    path: str
    view: str
    split: str
    rows: int


def _metadata_fields(source: Source, view: str) -> list[tuple[str, pa.DataType, dict]]:
    """(name, arrow type, Hugging Face feature) of the non-image columns of a view."""
    value = lambda dtype: {"_type": "Value", "dtype": dtype}  # noqa: E731
    label = {"_type": "ClassLabel", "names": list(source.classes)}
    common = [
        ("point_id", pa.int32(), value("int32")),
        ("year", pa.int16(), value("int16")),
    ]
    if view == "static":
        common += [("month", pa.int8(), value("int8")), ("sample_id", pa.string(), value("string"))]
    else:
        common += [
            ("months", pa.list_(pa.int8()), {"_type": "List", "feature": value("int8")}),
            ("sample_ids", pa.list_(pa.string()), {"_type": "List", "feature": value("string")}),
        ]
    common += [
        ("province", pa.string(), value("string")),
        ("class_name", pa.string(), value("string")),
        ("label", pa.int64(), label),
        ("aci_code", pa.int16(), value("int16")),
        ("lon", pa.float64(), value("float64")),
        ("lat", pa.float64(), value("float64")),
        ("split", pa.string(), value("string")),
        ("synthetic", pa.bool_(), value("bool")),
    ]
    if view == "static":
        common += [
            ("n_scenes", pa.int16(), value("int16")),
            ("cloud_fraction", pa.float32(), value("float32")),
            ("nodata_fraction", pa.float32(), value("float32")),
            ("curation", pa.string(), value("string")),
            ("curation_reasons", pa.string(), value("string")),
        ]
    return common


def schema(source: Source, view: str, size: int) -> pa.Schema:
    """The Arrow schema of a view, with the Hugging Face features in its metadata."""
    fields = _metadata_fields(source, view)
    for t in source.image_types:
        if view == "static":
            fields.append((image_column(t), _IMAGE, {"_type": "Image"}))
        else:
            fields.append((image_column(t), pa.list_(_IMAGE),
                           {"_type": "List", "feature": {"_type": "Image"}}))
    if view == "static" and source.arrays is not None:
        shape = [len(TIF_CHANNELS), size, size]
        fields.append((ARRAY_COLUMN, _ARRAY, {"_type": "Array3D", "shape": shape, "dtype": "float32"}))
    features = {name: feature for name, _, feature in fields}
    meta = {"huggingface": json.dumps({"info": {"features": features}}, separators=(",", ":"))}
    return pa.schema([pa.field(name, dtype) for name, dtype, _ in fields], metadata=meta)


def _none(value):
    """None for NaN/NA, else the value."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) or value is pa.NA else value


def _static_rows(source: Source, indices: Sequence[int]) -> dict[str, list]:
    table = source.table
    columns: dict[str, list] = {}
    for i in indices:
        name, split = source.records[i].name, source.records[i].split
        meta = table.iloc[i]
        row = {
            "point_id": name.point_id, "year": name.year, "month": name.month,
            "sample_id": name.stem, "province": name.province, "class_name": name.label,
            "label": source.classes.index(name.label), "aci_code": _int(meta["aci_code"]),
            "lon": _none(meta["lon"]), "lat": _none(meta["lat"]), "split": split,
            "synthetic": _none(meta["synthetic"]), "n_scenes": _int(meta["n_scenes"]),
            "cloud_fraction": _none(meta["cloud_fraction"]),
            "nodata_fraction": _none(meta["nodata_fraction"]),
            "curation": _none(meta["curation"]), "curation_reasons": _none(meta["curation_reasons"]),
        }
        for t in source.image_types:
            row[image_column(t)] = {"bytes": source.reader.png_bytes(i, t), "path": f"{name.with_type(t)}.png"}
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    return columns


def _int(value) -> int | None:
    value = _none(value)
    return None if value is None else int(value)


def _temporal_rows(source: Source, groups: Sequence[list[int]]) -> dict[str, list]:
    columns: dict[str, list] = {}
    for indices in groups:
        first = source.records[indices[0]]
        meta = source.table.iloc[indices[0]]
        name = first.name
        row = {
            "point_id": name.point_id, "year": name.year,
            "months": [source.records[i].name.month for i in indices],
            "sample_ids": [source.records[i].name.stem for i in indices],
            "province": name.province, "class_name": name.label,
            "label": source.classes.index(name.label), "aci_code": _int(meta["aci_code"]),
            "lon": _none(meta["lon"]), "lat": _none(meta["lat"]), "split": first.split,
            "synthetic": _none(meta["synthetic"]),
        }
        for t in source.image_types:
            row[image_column(t)] = [
                {"bytes": source.reader.png_bytes(i, t),
                 "path": f"{source.records[i].name.with_type(t)}.png"} for i in indices
            ]
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    return columns


def _batch(source: Source, view: str, items: Sequence, schema_: pa.Schema) -> pa.RecordBatch:
    if view == "static":
        columns = _static_rows(source, items)
        if ARRAY_COLUMN in schema_.names:
            stack = np.stack([source.array(i) for i in items])
            columns[ARRAY_COLUMN] = _nested(stack)
    else:
        columns = _temporal_rows(source, items)
    arrays = [
        columns[f.name] if isinstance(columns[f.name], pa.Array) else pa.array(columns[f.name], f.type)
        for f in schema_
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema_)


def _nested(stack: np.ndarray) -> pa.Array:
    """``(N, C, H, W)`` float32 as ``list<list<list<float32>>>`` without a Python loop."""
    n, c, h, w = stack.shape
    values = pa.array(np.ascontiguousarray(stack, np.float32).reshape(-1), pa.float32())
    rows = pa.ListArray.from_arrays(pa.array(np.arange(0, n * c * h * w + 1, w, dtype=np.int32)), values)
    planes = pa.ListArray.from_arrays(pa.array(np.arange(0, n * c * h + 1, h, dtype=np.int32)), rows)
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * c + 1, c, dtype=np.int32)), planes)


def view_items(source: Source, view: str, split: str) -> list:
    """The rows of a view in a split: record indices (static) or per point-year index lists."""
    indices = [i for i, r in enumerate(source.records) if r.split == split]
    if view == "static":
        return indices
    key = lambda i: (source.records[i].name.point_id, source.records[i].name.year)  # noqa: E731
    return [list(g) for _, g in groupby(indices, key)]


def _row_bytes(source: Source, view: str, item, size: int) -> int:
    """An estimate of one row's size: its PNGs, plus the raw array in the static view."""
    indices = [item] if view == "static" else item
    pngs = sum(len(source.reader.png_bytes(i, t)) for i in indices for t in source.image_types)
    array = 4 * len(TIF_CHANNELS) * size * size if view == "static" and source.arrays else 0
    return pngs + array


def write_shards(
    source: Source, out: Path, size: int, max_shard_mb: int = DEFAULT_MAX_SHARD_MB,
    views: Sequence[str] = VIEWS,
) -> list[Shard]:
    """Write every view and split of ``source`` under ``out/data``; return the shards."""
    plan = []
    for view in views:
        for split in SPLITS:
            items = view_items(source, view, split)
            if items:
                per_row = _row_bytes(source, view, items[0], size)
                n = max(1, math.ceil(len(items) * per_row / (max_shard_mb << 20)))
                bounds = np.linspace(0, len(items), n + 1).round().astype(int)
                for k in range(n):
                    path = f"data/{view}/{HF_SPLITS[split]}-{k:05d}-of-{n:05d}.parquet"
                    plan.append((path, view, split, items[bounds[k] : bounds[k + 1]]))
    shards = []
    with Progress() as progress:
        task = progress.add_task("shards", total=sum(len(p[3]) for p in plan))
        for path, view, split, items in plan:
            _write_shard(source, out / path, view, items, size, lambda n: progress.advance(task, n))
            shards.append(Shard(path, view, split, len(items)))
    log.info("%d shards written under %s", len(shards), out / "data")
    return shards


def _write_shard(source: Source, path: Path, view: str, items: list, size: int, advance) -> None:
    schema_ = schema(source, view, size)
    step = ROW_GROUP_ROWS[view]
    with atomic_path(path) as tmp, pq.ParquetWriter(
        tmp, schema_, compression="zstd",
        use_dictionary=["province", "class_name", "split", "curation", "curation_reasons"],
        use_byte_stream_split=[_ARRAY_LEAF] if ARRAY_COLUMN in schema_.names else False,
    ) as writer:
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            writer.write_batch(_batch(source, view, chunk, schema_))
            advance(len(chunk))

