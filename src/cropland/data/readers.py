"""Readers: this project's GeoTIFFs, the published PNG tree and packed arrays.

Every reader lists its samples as :class:`SampleRecord` rows (sorted by point, year,
month) and reads one sample as a float32 ``(C, H, W)`` array of the channels asked for.
Only :class:`GeoTiffReader` needs GDAL, and it imports rasterio when it is created; the
PNG and packed readers need NumPy and Pillow only.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar

import numpy as np

from cropland.core.classes import get_class
from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.data.channels import (
    TIF_CHANNELS,
    channel_image_type,
    png_channels,
    resolve_channels,
)
from cropland.dataset import SPLIT_NAMES, DatasetFolder, png_path, tif_path
from cropland.errors import DatasetError, NameFormatError, UnknownClassError

if TYPE_CHECKING:
    import torch

_Image = TypeVar("_Image", np.ndarray, "torch.Tensor")

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = SPLIT_NAMES
PACK_FORMAT = "cropland-packed"
PACK_VERSION = 1


@dataclass(frozen=True)
class SampleRecord:
    """One sample (a point in one month of one year) and the split of its point."""

    name: SampleName
    split: str


def center_crop(image: _Image, size: int | None, origin: str) -> _Image:
    """Crop the last two axes of an array or tensor to ``size`` x ``size`` around the centre (65 -> 64 keeps 0..63)."""
    if size is None:
        return image
    h, w = image.shape[-2:]
    if h < size or w < size:
        raise DatasetError(f"{origin} is {h} x {w} pixels, smaller than the size {size} asked for")
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top : top + size, left : left + size]


def built_from(root: str | Path) -> Path:
    """The dataset folder behind ``root``: the folder a packed dataset was packed from, else ``root``."""
    root = Path(root)
    manifest = root / "manifest.json"
    if manifest.exists():
        try:
            source = Path(json.loads(manifest.read_text("utf-8"))["source"]["path"])
        except (ValueError, KeyError, TypeError):
            return root
        if source.is_dir():
            return source
    return root


def render_settings(root: str | Path) -> dict | None:
    """The ``render:`` settings of the cropland build behind ``root`` (how its PNGs were made)."""
    return DatasetFolder(built_from(root)).config_data.get("render")


def declared_classes(root: str | Path) -> tuple[str, ...] | None:
    """The classes a dataset declares (its build configuration's ``classes``), sorted; None if none.

    A model's class list comes from here, not from the labels found in one split or year, so
    a year that lacks a class keeps every class index.
    """
    keys = DatasetFolder(built_from(root)).config_data.get("classes")
    if not keys:
        return None
    try:
        return tuple(sorted({get_class(k).name for k in keys}))
    except UnknownClassError as e:
        raise DatasetError(f"{DatasetFolder(built_from(root)).config_path}: {e}") from None


def check_no_leak(records: Iterable[SampleRecord], origin: str) -> None:
    """Raise when one point is in two splits (a point must stay in one split in every year)."""
    seen: dict[int, str] = {}
    for r in records:
        first = seen.setdefault(r.name.point_id, r.split)
        if first != r.split:
            raise DatasetError(
                f"point {r.name.point_id} is in both {first} and {r.split} in {origin}; "
                "splits must be grouped by point (regenerate them with the dataset's splits.json)"
            )


def check_classes(records: Iterable[SampleRecord], classes: Iterable[str] | None, origin: str) -> tuple[str, ...]:
    """The class list: ``classes`` (sorted), which must hold every label; else the labels found."""
    found = {r.name.label for r in records}
    if classes is None:
        return tuple(sorted(found))
    classes = tuple(sorted(set(classes)))
    unknown = sorted(found - set(classes))
    if unknown:
        raise DatasetError(
            f"{origin} has samples of {', '.join(unknown)}, which are not among its classes "
            f"({', '.join(classes)}); add them to the configuration's classes or remove those samples"
        )
    return classes


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Reader(ABC):
    """A source of samples: ``records``, ``classes``, ``channels`` and :meth:`read`."""

    #: Channel names the source has, in storage order.
    channels: tuple[str, ...]
    records: list[SampleRecord]
    classes: tuple[str, ...]
    root: Path | str  # a URL for a remote release

    @abstractmethod
    def read(self, index: int, channels: Sequence[str]) -> np.ndarray:
        """Sample ``index`` of :attr:`records` as float32 ``(C, H, W)``, NaN where no data."""

    @abstractmethod
    def expected_path(self, name: SampleName) -> str:
        """Where the file of a sample is (or would be): used in error messages."""

    def read_many(self, indices: Sequence[int], channels: Sequence[str], size: int | None) -> np.ndarray:
        """Several samples stacked, centre-cropped to ``size``; dtype as stored where possible."""
        arrays = [
            center_crop(self.read_stored(i, channels), size, self.expected_path(self.records[i].name))
            for i in indices
        ]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise DatasetError(
                f"samples in {self.root} have different sizes {sorted(shapes)}; pass a size to crop them to"
            )
        return np.stack(arrays) if arrays else np.zeros((0, len(channels), 1, 1), np.float32)

    def read_stored(self, index: int, channels: Sequence[str]) -> np.ndarray:
        """Like :meth:`read`, in the stored dtype (uint8 for PNGs)."""
        return self.read(index, channels)

    def subset(self, indices: Sequence[int]) -> Self:
        """A copy that reads only the samples ``indices`` (numbered from 0 there): small enough
        to send to a worker process with each chunk of work."""
        part = copy.copy(self)
        part.records = [self.records[i] for i in indices]
        return part

    def label_index(self, label: str) -> int:
        """Class index of a class folder name."""
        return self.classes.index(label)

    def _finish(self, records: list[SampleRecord], origin: str, classes: Iterable[str] | None = None) -> None:
        """Sort and check the records; ``classes``: the declared class list (default: the labels found)."""
        if not records:
            raise DatasetError(f"no samples found in {origin}; check the path and docs/format.md")
        records.sort(key=lambda r: (r.name.point_id, r.name.year, r.name.month))
        check_no_leak(records, origin)
        self.records = records
        self.classes = check_classes(records, classes, origin)


class GeoTiffReader(Reader):
    """This project's ``tif/{year}/{CLASS}/POINT_....tif`` files (19 bands) and ``splits.json``."""

    channels = TIF_CHANNELS
    root: Path

    def __init__(self, root: str | Path) -> None:
        import rasterio  # noqa: F401  (imported here so training on PNG/packed data needs no GDAL)

        self.root = Path(root)
        splits = DatasetFolder(self.root).splits().assignments
        records = []
        self.paths: dict[SampleName, Path] = {}
        for name, path in DatasetFolder(self.root).samples():
            split = splits.get(name.point_id)
            if split is None:
                log.warning("%s: point %d is not in splits.json; skipped", path, name.point_id)
                continue
            self.paths[name] = path
            records.append(SampleRecord(name, split))
        self._finish(records, str(self.root / "tif"), declared_classes(self.root))

    def subset(self, indices: Sequence[int]) -> Self:
        part = super().subset(indices)
        part.paths = {r.name: self.paths[r.name] for r in part.records}
        return part

    def expected_path(self, name: SampleName) -> str:
        return str(tif_path(self.root, name))

    def read(self, index: int, channels: Sequence[str]) -> np.ndarray:
        import rasterio
        from rasterio.errors import RasterioError

        name = self.records[index].name
        path = self.paths[name]
        bands = [TIF_CHANNELS.index(c) + 1 for c in channels]
        try:
            with rasterio.open(path) as src:
                if src.count < len(TIF_CHANNELS):
                    raise DatasetError(
                        f"{path} has {src.count} bands, expected {len(TIF_CHANNELS) + 1} "
                        "(12 bands, 6 indices, VALID); rebuild it with `cropland build`"
                    )
                return src.read(bands, out_dtype="float32")
        except RasterioError as e:
            raise DatasetError(f"{path} cannot be read as a GeoTIFF ({e}); delete it and rebuild it") from None


def _png_name(path: Path) -> tuple[SampleName, str | None]:
    try:
        return SampleName.parse(path.name)
    except NameFormatError as e:
        raise DatasetError(f"{path}: {e}") from None


def read_png(path: Path | str, image_type: str, data: bytes | None = None) -> np.ndarray:
    """One PNG as uint8 ``(C, H, W)``: 3 channels for RGB, the grey value for an index.

    ``data``: the file's bytes when they do not come from ``path`` (a zip member, a shard);
    ``path`` then only names them in error messages.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path if data is None else io.BytesIO(data)) as img:
            img.load()
            array = np.asarray(img)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; the {image_type} tree lacks this sample") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetError(f"{path} is not a readable PNG ({e}); replace or delete it") from None
    if array.ndim == 2:
        array = array[:, :, None]
    want = 3 if image_type == "RGB" else 1
    if array.dtype != np.uint8 or array.shape[2] < want or (image_type == "RGB" and array.shape[2] > 4):
        raise DatasetError(
            f"{path} has {array.shape[2]} channel(s) of {array.dtype}, expected "
            f"{'3 (RGB)' if want == 3 else '1 or 3 equal (grey index)'} of uint8"
        )
    return np.ascontiguousarray(array[:, :, :want].transpose(2, 0, 1))


class PngTreeReader(Reader):
    """The published layout ``{year}/{TYPE}/{split}/{CLASS}/POINT_..._{TYPE}.png`` (no GDAL).

    The split of each sample is its folder; samples are listed from the first image type
    asked for, and a missing file of another type is an error naming that file.
    """

    root: Path

    def __init__(self, root: str | Path, image_types: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        found = sorted({p.name for p in self.root.glob("[0-9][0-9][0-9][0-9]/*") if p.is_dir()})
        self.image_types = tuple(t for t in (image_types or IMAGE_TYPES) if t in found)
        if not self.image_types:
            raise DatasetError(
                f"{self.root} has no PNG tree {{year}}/{{TYPE}}/{{split}}/{{CLASS}} for the image types "
                f"{', '.join(image_types or IMAGE_TYPES)} (found {', '.join(found) or 'none'})"
            )
        self.channels = tuple(c for t in self.image_types for c in png_channels(t))
        records = []
        for path in sorted(self.root.glob(f"[0-9][0-9][0-9][0-9]/{self.image_types[0]}/*/*/*.png")):
            name, _ = _png_name(path)
            split = path.parent.parent.name
            if split not in SPLITS:
                raise DatasetError(f"{path} is under {split!r}; split folders are {', '.join(SPLITS)}")
            records.append(SampleRecord(name, split))
        self._check_split_file(records)
        folders = {p.name for p in self.root.glob(f"[0-9][0-9][0-9][0-9]/{self.image_types[0]}/*/*") if p.is_dir()}
        self._finish(records, f"the PNG tree {self.root}", declared_classes(self.root) or folders)
        self._split_of = {r.name.point_id: r.split for r in self.records}

    def subset(self, indices: Sequence[int]) -> Self:
        part = super().subset(indices)
        part._split_of = {r.name.point_id: r.split for r in part.records}
        return part

    def _check_split_file(self, records: list[SampleRecord]) -> None:
        """When the tree has a ``splits.json``, every sample must sit in its point's split folder."""
        if not (self.root / "splits.json").exists():
            return
        splits = DatasetFolder(self.root).splits().assignments
        for r in records:
            expected = splits.get(r.name.point_id)
            if expected is not None and expected != r.split:
                raise DatasetError(
                    f"{self.path(r, self.image_types[0])} is under {r.split} but splits.json puts point "
                    f"{r.name.point_id} in {expected}; re-export the PNG tree"
                )

    def path(self, record: SampleRecord, image_type: str) -> Path:
        """The PNG file of one image type of a sample."""
        return png_path(self.root, record.name, image_type, record.split)

    def expected_path(self, name: SampleName) -> str:
        split = self._split_of.get(name.point_id, "training")  # a dict: called for every read
        return str(self.path(SampleRecord(name, split), self.image_types[0]))

    def read(self, index: int, channels: Sequence[str]) -> np.ndarray:
        return self.read_stored(index, channels).astype(np.float32) / np.float32(255)

    def png_bytes(self, index: int, image_type: str) -> bytes:
        """The PNG file of one image type of a sample, as stored."""
        path = self.path(self.records[index], image_type)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"{path} is missing; the {image_type} tree lacks this sample") from None

    def read_png(self, index: int, image_type: str) -> np.ndarray:
        """One PNG of a sample as uint8 ``(C, H, W)``."""
        return read_png(self.path(self.records[index], image_type), image_type)

    def read_stored(self, index: int, channels: Sequence[str]) -> np.ndarray:
        """The raw 0-255 values."""
        planes: dict[str, np.ndarray] = {}
        for image_type in dict.fromkeys(channel_image_type(c) for c in channels):
            array = self.read_png(index, image_type)
            planes.update(zip(png_channels(image_type), array, strict=True))
        return np.stack([planes[c] for c in channels])


class PackedReader(Reader):
    """Arrays written by :func:`cropland.data.pack.pack`: ``manifest.json`` + one array per split.

    Args:
        root: the packed folder.
        verify: check every file's SHA-256 against the manifest (fast; catches truncation).
    """

    root: Path

    def __init__(self, root: str | Path, verify: bool = True) -> None:
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.exists():
            raise DatasetError(f"{manifest_path} is missing; make a packed dataset with `cropland pack`")
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
        except ValueError as e:
            raise DatasetError(f"{manifest_path} is not valid JSON ({e}); re-run `cropland pack`") from None
        if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
            raise DatasetError(f"{manifest_path} is not a {PACK_FORMAT} manifest; re-run `cropland pack`")
        if manifest.get("version") != PACK_VERSION:
            raise DatasetError(
                f"{manifest_path} is version {manifest.get('version')!r}, this cropland reads version "
                f"{PACK_VERSION}; re-run `cropland pack`"
            )
        self.manifest = manifest
        self.channels = tuple(manifest["channels"])
        self.scale = float(manifest["scale"])
        self.split_names = tuple(manifest["splits"])
        records: list[SampleRecord] = []
        for split, entry in manifest["splits"].items():
            for key in ("images", "samples"):
                self._check_file(entry[key], verify)
            records.extend(
                SampleRecord(name, split) for name in self._read_samples(self.root / entry["samples"]["file"])
            )
        split_of = np.repeat(np.arange(len(self.split_names), dtype=np.int8),
                             [e["count"] for e in manifest["splits"].values()])
        row_in_split = np.concatenate(
            [np.arange(e["count"]) for e in manifest["splits"].values()] or [np.zeros(0, int)]
        )
        if len(split_of) != len(records):
            raise DatasetError(f"{manifest_path}: its counts do not match the samples files; re-run `cropland pack`")
        order = sorted(
            range(len(records)), key=lambda i: (records[i].name.point_id, records[i].name.year, records[i].name.month)
        )
        self.records = [records[i] for i in order]
        #: Where each record's image is: its split's array and its row there (NumPy, so that
        #: DataLoader workers share them without copying Python objects).
        self.split_of, self.row_in_split = split_of[order], row_in_split[order]
        check_no_leak(self.records, str(self.root))
        self.classes = tuple(manifest["classes"])
        self._arrays: dict[str, np.ndarray] | None = None

    def subset(self, indices: Sequence[int]) -> Self:
        part = super().subset(indices)
        rows = np.asarray(indices, dtype=np.int64)
        part.split_of, part.row_in_split = self.split_of[rows], self.row_in_split[rows]
        return part

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Each split's images, memory-mapped (opened on first use, in each process)."""
        if self._arrays is None:
            self._arrays = {
                split: np.load(self.root / entry["images"]["file"], mmap_mode="r")
                for split, entry in self.manifest["splits"].items()
            }
        return self._arrays

    def __getstate__(self) -> dict:
        """Pickled without the mapped arrays (a worker process maps the files itself)."""
        return {**self.__dict__, "_arrays": None}

    def _check_file(self, entry: dict, verify: bool) -> None:
        path = self.root / entry["file"]
        if not path.exists():
            raise DatasetError(f"{path} is missing; re-run `cropland pack`")
        if verify and sha256_file(path) != entry["sha256"]:
            raise DatasetError(f"{path} does not match its checksum in manifest.json; re-run `cropland pack`")

    @staticmethod
    def _read_samples(path: Path) -> list[SampleName]:
        with open(path, newline="", encoding="utf-8") as f:
            return [SampleName.parse(row["name"])[0] for row in csv.DictReader(f)]

    def expected_path(self, name: SampleName) -> str:
        return f"{self.root} (sample {name.stem})"

    def _channel_index(self, channels: Sequence[str]) -> list[int]:
        return [self.channels.index(c) for c in channels]

    def read(self, index: int, channels: Sequence[str]) -> np.ndarray:
        array = self.arrays[self.split_names[self.split_of[index]]][self.row_in_split[index]]
        return array[self._channel_index(channels)].astype(np.float32) * np.float32(self.scale)

    def read_many(self, indices: Sequence[int], channels: Sequence[str], size: int | None) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        chan = self._channel_index(channels)
        out = None
        for s, split in enumerate(self.split_names):
            sel = np.flatnonzero(self.split_of[idx] == s)
            if sel.size == 0:
                continue
            rows = self.row_in_split[idx[sel]]
            order = np.argsort(rows, kind="stable")  # read the mapped file forwards
            block = self.arrays[split][rows[order]]
            if chan != list(range(block.shape[1])):
                block = block[:, chan]
            block = center_crop(block, size, str(self.root))
            if out is None:
                out = np.empty((len(idx),) + block.shape[1:], block.dtype)
            out[sel[order]] = block
        return out if out is not None else np.zeros((0, len(chan), 1, 1), np.float32)


def open_reader(root: str | Path, channels: str | Sequence[str] = "RGB", source: str = "auto") -> Reader:
    """Open a dataset: packed (``manifest.json``), GeoTIFF (``tif/``), a PNG tree, a published
    release (``croissant.json``, a folder or any fsspec URL) or the original release's zips.

    ``source`` forces one kind (``packed``, ``tif``, ``png``, ``parquet``, ``zip``); ``auto``
    prefers packed, then GeoTIFFs when the channels need spectral bands or the PNG tree is
    absent, then PNGs; a release gives its PNGs, or its 18-channel arrays when the channels
    need spectral bands.
    """
    if source == "parquet" or (source == "auto" and "://" in str(root)):
        return _release_reader(root, channels)
    root = Path(root)
    if source in ("auto", "zip") and (root.suffix == ".zip" or source == "zip"):
        return _zip_reader(root, channels)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; pass a dataset folder (see docs/format.md)")
    if source == "auto":
        source = _guess_source(root, channels)
    if source == "parquet":
        return _release_reader(root, channels)
    if source == "zip":
        return _zip_reader(root, channels)
    if source == "packed":
        return PackedReader(root)
    if source == "tif":
        return GeoTiffReader(root)
    if source == "png":
        types = _png_types(channels)
        if types is None:
            raise DatasetError(
                f"a PNG tree has only the image types {', '.join(IMAGE_TYPES)}; {channels!r} needs "
                "GeoTIFF data (pass --source tif or pack the GeoTIFFs)"
            )
        return PngTreeReader(root, list(dict.fromkeys(types)))
    raise DatasetError(f"unknown source {source!r}; use auto, packed, tif, png, parquet or zip")


def _release_reader(root: str | Path, channels: str | Sequence[str]) -> Reader:
    from cropland.data.shards import ShardReader

    types = _png_types(channels)
    if types is None or (isinstance(channels, str) and channels.strip().upper() == "ALL"):
        return ShardReader(root, images="array")
    return ShardReader(root, images="png", image_types=list(dict.fromkeys(types)))


def _zip_reader(root: Path, channels: str | Sequence[str]) -> Reader:
    from cropland.data.original import ZipTreeReader

    types = _png_types(channels)
    if types is None:
        raise DatasetError(f"the original zips hold the image types {', '.join(IMAGE_TYPES)} only; "
                           f"{channels!r} needs GeoTIFF data")
    return ZipTreeReader(root, list(dict.fromkeys(types)))


def _png_types(channels: str | Sequence[str]) -> list[str] | None:
    """The PNG image types a channel selection needs, or None when a PNG tree cannot serve it."""
    tokens = [t.strip().upper() for t in (channels.split(",") if isinstance(channels, str) else channels)]
    types = [t for token in tokens for t in (IMAGE_TYPES if token == "ALL" else (channel_image_type(token),))]
    return types if all(t in IMAGE_TYPES for t in types) else None


def _guess_source(root: Path, channels: str | Sequence[str]) -> str:
    if (root / "manifest.json").exists():
        return "packed"
    if (root / "croissant.json").exists():
        return "parquet"
    selects_all = isinstance(channels, str) and channels.strip().upper() == "ALL"
    png_ok = _png_types(channels) is not None and not selects_all  # "all": GeoTIFFs have more
    has_png = any(re.fullmatch(r"\d{4}", p.name) for p in root.iterdir() if p.is_dir())
    if (root / "tif").is_dir() and (not png_ok or not has_png):
        return "tif"
    if has_png:
        return "png"
    if any(root.glob("*.zip")):
        return "zip"
    raise DatasetError(f"{root} holds no packed data, no tif/ folder and no PNG tree (see docs/format.md)")


def selected_channels(reader: Reader, spec: str | Sequence[str]) -> tuple[str, ...]:
    """Resolve a channel selection against a reader's channels."""
    return resolve_channels(spec if isinstance(spec, str) else tuple(spec), reader.channels)
