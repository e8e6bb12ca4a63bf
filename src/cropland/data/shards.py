"""A published release's Parquet shards (``cropland publish``), local or behind any fsspec URL.

The release layout (docs/format.md, "Published release") is named here, where it is read:
``data/{view}/{split}-{i:05d}-of-{n:05d}.parquet`` listed in ``croissant.json``; the static
view has one row per sample with one PNG column per image type (``rgb``, ``ndvi``, ...) and,
for datasets built by cropland, the 18 channels in ``multispectral``.

:class:`ShardReader` reads only the columns and row groups it needs (a remote release is
streamed through HTTP range requests, never downloaded whole) and keeps a few decoded row
groups in memory, so reading samples in storage order decodes each group once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Self

import numpy as np

from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.data.channels import TIF_CHANNELS, channel_image_type, png_channels
from cropland.data.readers import Reader, SampleRecord, read_png, sha256_file
from cropland.errors import DatasetError

VIEWS = ("static", "temporal")
#: Release split names (Hugging Face's) of the dataset's split folders.
HF_SPLITS = {"training": "train", "validation": "validation", "test": "test"}
#: The column of the 18-channel array (12 bands, 6 indices; float32, NaN no data).
ARRAY_COLUMN = "multispectral"
CROISSANT = "croissant.json"
CHECKSUMS = "SHA256SUMS"
#: Bytes per remote read: small, so a remote release is read by column chunk, not whole.
BLOCK_SIZE = 256 << 10


def image_column(image_type: str) -> str:
    """The column of one image type (``RGB`` -> ``rgb``)."""
    return image_type.lower()


def verify_checksums(release: str | Path) -> list[str]:
    """Check every file listed in the release's ``SHA256SUMS``; return their paths, in order."""
    release = Path(release)
    sums = release / CHECKSUMS
    if not sums.exists():
        raise DatasetError(f"{sums} is missing; is {release} a release of `cropland publish`?")
    paths = []
    for line in sums.read_text("utf-8").splitlines():
        digest, path = line.split("  ", 1)
        if not (release / path).is_file() or sha256_file(release / path) != digest:
            raise DatasetError(f"{release / path} is missing or changed since publishing; publish or download it again")
        paths.append(path)
    return paths


def is_url(root: object) -> bool:
    """True for an fsspec URL (``hf://datasets/...``, ``https://...``, ``s3://...``)."""
    return "://" in str(root)


class ShardReader(Reader):
    """The static view of a release: the PNGs (``images="png"``) or the 18-channel arrays.

    Args:
        root: the release folder or URL (the folder holding ``croissant.json``).
        images: ``png`` (the published image types, 0-255 as in the PNG tree) or ``array``
            (the 18 channels of the GeoTIFFs, bit for bit).
        image_types: with ``png``, the image types to read (default: all in the release).
        cache_groups: decoded row groups kept in memory.
    """

    def __init__(self, root, images: str = "png", image_types: Sequence[str] | None = None,
                 cache_groups: int = 4) -> None:
        import pyarrow.parquet as pq

        self.root = str(root).rstrip("/")
        self.images = images
        self.files = self._static_files()
        self.cache_groups = cache_groups
        self._files: dict[int, object] = {}
        self._cache: OrderedDict = OrderedDict()
        schema = pq.read_schema(self._open(0))
        if images == "array":
            if ARRAY_COLUMN not in schema.names:
                raise DatasetError(
                    f"{self.root} has no {ARRAY_COLUMN} column (a release of PNGs only); "
                    "read its image types (RGB, NDVI, ...)"
                )
            self.image_types: tuple[str, ...] = ()
            self.channels = TIF_CHANNELS
        elif images == "png":
            found = [t for t in IMAGE_TYPES if image_column(t) in schema.names]
            self.image_types = tuple(t for t in (image_types or found) if t in found)
            if not self.image_types:
                raise DatasetError(f"{self.root} has none of the image types {', '.join(image_types or IMAGE_TYPES)}")
            self.channels = tuple(c for t in self.image_types for c in png_channels(t))
        else:
            raise DatasetError(f"unknown images {images!r}; use png or array")
        records, self.where = [], []
        for f in range(len(self.files)):
            parquet = pq.ParquetFile(self._open(f))
            table = parquet.read(columns=["sample_id", "split"])
            sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
            groups = np.repeat(np.arange(len(sizes)), sizes)
            offsets = np.arange(len(groups)) - np.repeat(np.cumsum([0] + sizes[:-1]), sizes)
            for sid, split, g, o in zip(table["sample_id"].to_pylist(), table["split"].to_pylist(),
                                        groups, offsets, strict=True):
                records.append(SampleRecord(SampleName.parse(sid)[0], split))
                self.where.append((f, int(g), int(o)))
        order = sorted(
            range(len(records)), key=lambda i: (records[i].name.point_id, records[i].name.year, records[i].name.month)
        )
        self.where = [self.where[i] for i in order]
        self._finish([records[i] for i in order], f"the release {self.root}", self.declared_classes)

    def _static_files(self) -> list[str]:
        """The static shards, from the release's ``croissant.json`` (works for any URL)."""
        path = f"{self.root}/{CROISSANT}"
        try:
            with self._open_path(path) as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise DatasetError(f"{path} is missing; is {self.root} a release of `cropland publish`?") from None
        except ValueError as e:
            raise DatasetError(f"{path} is not valid JSON ({e}); publish the release again") from None
        files = sorted(
            d["contentUrl"]
            for d in doc.get("distribution", [])
            if d.get("@type") == "cr:FileObject"
            and PurePosixPath(d.get("contentUrl", "")).parent.as_posix() == "data/static"
        )
        if not files:
            raise DatasetError(f"{path} lists no static shard (data/static/*.parquet)")
        self.declared_classes = _croissant_classes(doc)
        return files

    @staticmethod
    def _open_path(path: str):
        if is_url(path):
            import fsspec

            return fsspec.open(path, "rb", block_size=BLOCK_SIZE).open()
        return open(path, "rb")

    def _open(self, f: int):
        if f not in self._files:
            self._files[f] = self._open_path(f"{self.root}/{self.files[f]}")
        return self._files[f]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"], state["_cache"] = {}, OrderedDict()  # open files stay in their process
        return state

    def subset(self, indices: Sequence[int]) -> Self:
        part = super().subset(indices)
        part.where = [self.where[i] for i in indices]
        part._files, part._cache = {}, OrderedDict()
        return part

    def _group(self, f: int, g: int) -> dict:
        """One row group's image columns, decoded columns cached (PNG bytes, or the arrays)."""
        key = (f, g)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        import pyarrow.parquet as pq

        columns = [ARRAY_COLUMN] if self.images == "array" else [image_column(t) for t in self.image_types]
        table = pq.ParquetFile(self._open(f)).read_row_group(g, columns=columns)
        if self.images == "array":
            column = table[ARRAY_COLUMN].combine_chunks()
            values = column.flatten().flatten().flatten().to_numpy()
            side = round((values.size / len(column) / len(TIF_CHANNELS)) ** 0.5)
            block = {ARRAY_COLUMN: values.reshape(len(column), len(TIF_CHANNELS), side, side)}
        else:
            block = {c: table[c].combine_chunks().field("bytes").to_pylist() for c in columns}
        self._cache[key] = block
        if len(self._cache) > self.cache_groups:
            self._cache.popitem(last=False)
        return block

    def expected_path(self, name: SampleName) -> str:
        return f"{self.root} (sample {name.stem})"

    def png_bytes(self, index: int, image_type: str) -> bytes:
        """The PNG of one image type of a sample, as published."""
        f, g, o = self.where[index]
        return self._group(f, g)[image_column(image_type)][o]

    def read(self, index: int, channels: Sequence[str]) -> np.ndarray:
        stored = self.read_stored(index, channels)
        return stored if self.images == "array" else stored.astype(np.float32) / np.float32(255)

    def read_stored(self, index: int, channels: Sequence[str]) -> np.ndarray:
        """float32 arrays, or the PNGs' 0-255 values."""
        if self.images == "array":
            f, g, o = self.where[index]
            array = self._group(f, g)[ARRAY_COLUMN][o]
            return array[[TIF_CHANNELS.index(c) for c in channels]]
        name = self.records[index].name
        planes: dict[str, np.ndarray] = {}
        for t in dict.fromkeys(channel_image_type(c) for c in channels):
            array = read_png(f"{self.root}: {name.with_type(t)}.png", t, self.png_bytes(index, t))
            planes.update(zip(png_channels(t), array, strict=True))
        return np.stack([planes[c] for c in channels])


def _croissant_classes(doc: dict) -> list[str] | None:
    """The class names of a release's ``classes`` record set (None when it has none)."""
    for record_set in doc.get("recordSet", []):
        if record_set.get("@id") == "classes" and record_set.get("data"):
            return [row["classes/name"] for row in record_set["data"]]
    return None
