"""``cropland pack``: one array per split plus a manifest with checksums, for fast training.

Layout of a packed folder::

    manifest.json           format, channels, classes, scale, per split: files, SHA-256, shape
    {split}_images.npy      (N, C, H, W): float16 from GeoTIFFs, uint8 from a PNG tree
    {split}_samples.csv     name, point_id, year, month, province, label, label_index

Pixel value = stored value x ``scale`` (1 for GeoTIFF reflectance, 1/255 for PNGs).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.progress import Progress

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

log = logging.getLogger(__name__)
CHUNK = 512


def pack(
    dataset: str | Path,
    out: str | Path,
    channels: str | Sequence[str] = "all",
    source: str = "auto",
    size: int | None = None,
) -> Path:
    """Pack a GeoTIFF dataset or a PNG tree into ``out``; return the manifest path."""
    reader = open_reader(dataset, channels, source)
    if isinstance(reader, PackedReader):
        raise DatasetError(f"{dataset} is already packed")
    names = selected_channels(reader, channels)
    size = size or _first_size(reader, names)
    out = Path(out)
    entries = {}
    for split in SPLITS:
        indices = [i for i, r in enumerate(reader.records) if r.split == split]
        if indices:
            entries[split] = _pack_split(reader, split, indices, names, size, out)
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


def _pack_split(reader: Reader, split: str, indices: list[int], names: Sequence[str], size: int, out: Path) -> dict:
    dtype = np.uint8 if isinstance(reader, PngTreeReader) else np.float16
    shape = (len(indices), len(names), size, size)
    images_path = out / f"{split}_images.npy"
    with atomic_path(images_path) as tmp, Progress() as progress:
        task = progress.add_task(f"pack {split}", total=len(indices))
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        for start in range(0, len(indices), CHUNK):
            chunk = indices[start : start + CHUNK]
            array[start : start + len(chunk)] = reader.read_many(chunk, names, size)
            progress.advance(task, len(chunk))
        array.flush()
        del array
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
        "images": {"file": images_path.name, "sha256": sha256_file(images_path)},
        "samples": {"file": samples_path.name, "sha256": sha256_file(samples_path)},
    }
