"""``cropland pack``: one array per split plus a manifest with checksums, for fast training.

Layout of a packed folder::

    manifest.json           format, channels, classes, scale, per split: files, SHA-256, shape
    {split}_images.npy      (N, C, H, W): float16 from GeoTIFFs, uint8 from a PNG tree
    {split}_samples.csv     name, point_id, year, month, province, label, label_index

Pixel value = stored value x ``scale`` (1 for GeoTIFF reflectance, 1/255 for PNGs).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from pathlib import Path

import numpy as np
from rich.progress import Progress, TaskID

from cropland import __version__
from cropland.data.readers import (
    PACK_FORMAT,
    PACK_VERSION,
    SPLITS,
    PackedReader,
    PngTreeReader,
    Reader,
    open_reader,
    selected_channels,
    sha256_file,
)
from cropland.errors import DatasetError
from cropland.io import atomic_path, write_text_atomic
from cropland.parallel import chunked, default_workers, imap_bounded

log = logging.getLogger(__name__)
CHUNK = 128  # samples read and written at once
POOL_MIN_SAMPLES = 2000  # fewer samples are read in this process (a pool's start-up would not pay)


def pack(
    dataset: str | Path,
    out: str | Path,
    channels: str | Sequence[str] = "all",
    source: str = "auto",
    size: int | None = None,
    workers: int | None = None,
) -> Path:
    """Pack a GeoTIFF dataset or a PNG tree into ``out``; return the manifest path.

    ``workers`` processes read the samples (default: the available cores, at most 8, from
    ``POOL_MIN_SAMPLES`` samples on); the arrays are written in order by this process.
    """
    reader = open_reader(dataset, channels, source)
    if isinstance(reader, PackedReader):
        raise DatasetError(f"{dataset} is already packed")
    names = selected_channels(reader, channels)
    size = size or _first_size(reader, names)
    out = Path(out)
    if workers is None:
        workers = default_workers() if len(reader.records) >= POOL_MIN_SAMPLES else 1
    entries = {}
    for split in SPLITS:
        indices = [i for i, r in enumerate(reader.records) if r.split == split]
        if indices:
            entries[split] = _pack_split(reader, split, indices, names, size, out, workers)
    manifest = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cropland_version": __version__,
        "source": {"path": str(Path(dataset).resolve()), "kind": type(reader).__name__},
        "channels": list(names),
        "classes": list(reader.classes),
        "scale": 1 / 255 if isinstance(reader, PngTreeReader) else 1.0,
        "size": size,
        "splits": entries,
    }
    path = write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=2))
    log.info("packed %d samples of %d channels into %s", len(reader.records), len(names), out)
    return path


def _first_size(reader: Reader, names: Sequence[str]) -> int:
    h, w = reader.read(0, names[:1]).shape[-2:]
    return min(h, w)


def _pack_split(reader: Reader, split: str, indices: list[int], names: Sequence[str], size: int, out: Path,
                workers: int) -> dict:
    """Write one split's array as ``.npy``, chunk by chunk in order, hashing as it goes: memory
    holds one chunk, whatever the split's size."""
    dtype = np.dtype(np.uint8 if isinstance(reader, PngTreeReader) else np.float16)
    shape = (len(indices), len(names), size, size)
    images_path = out / f"{split}_images.npy"
    digest = hashlib.sha256()
    with atomic_path(images_path) as tmp, open(tmp, "wb") as f, Progress() as progress:
        task = progress.add_task(f"pack {split}", total=len(indices))
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
        blocks: Iterator[bytes | memoryview] = chain(
            [header.getvalue()], _blocks(reader, indices, names, size, dtype, workers, progress, task))
        for block in blocks:
            f.write(block)
            digest.update(block)
    samples_path = out / f"{split}_samples.csv"
    with atomic_path(samples_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "point_id", "year", "month", "province", "label", "label_index"])
        for i in indices:
            n = reader.records[i].name
            writer.writerow([n.stem, n.point_id, n.year, n.month, n.province, n.label, reader.label_index(n.label)])
    return {
        "count": len(indices),
        "shape": list(shape),
        "dtype": np.dtype(dtype).name,
        "images": {"file": images_path.name, "sha256": digest.hexdigest()},
        "samples": {"file": samples_path.name, "sha256": sha256_file(samples_path)},
    }


def _blocks(reader: Reader, indices: list[int], names: Sequence[str], size: int, dtype: np.dtype,
            workers: int, progress: Progress, task: TaskID) -> Iterator[memoryview]:
    """The split's samples as bytes of ``dtype``, ``CHUNK`` samples at a time, in order; each
    chunk is read by a worker from its own :meth:`Reader.subset`."""
    parts = (reader.subset(chunk) for chunk in chunked(indices, CHUNK))
    for block in imap_bounded(partial(_read_all, names=names, size=size, dtype=dtype), parts, workers):
        yield block.data.cast("B")
        progress.advance(task, len(block))


def _read_all(reader: Reader, names: Sequence[str], size: int, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(reader.read_many(range(len(reader.records)), names, size), dtype=dtype)
