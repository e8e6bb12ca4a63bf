"""A dataset folder: the one owner of its layout, configuration, splits and samples.

See ``docs/format.md``::

    OUT/config.yaml  points.csv  splits.json  manifest.sqlite  report.md  dataset_card.md
    OUT/tif/{year}/{CLASS}/NAME.tif
    OUT/{year}/{TYPE}/{split}/{CLASS}/NAME_{TYPE}.png
    OUT/raw/{year}/{CLASS}/NAME.zip

Every stage reaches a dataset through :class:`DatasetFolder` (or the path functions below),
so the layout is written down once. Reading it needs neither GDAL nor pydantic, except
:meth:`DatasetFolder.config`, which validates the build configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cropland.core.naming import SampleName
from cropland.errors import DatasetError, NameFormatError
from cropland.io import write_text_atomic

if TYPE_CHECKING:
    from cropland.config import BuildConfig, RenderConfig

#: Split folder names of the published PNG tree, in order.
SPLIT_NAMES: tuple[str, ...] = ("training", "validation", "test")

CONFIG_FILE = "config.yaml"
POINTS_FILE = "points.csv"
SPLITS_FILE = "splits.json"
STATS_DIR = "stats"
REPORT_FILE = "report.md"
CARD_FILE = "dataset_card.md"


def tif_path(root: str | Path, sample: SampleName) -> Path:
    """``OUT/tif/{year}/{CLASS}/NAME.tif``: the sample GeoTIFF."""
    return Path(root) / "tif" / str(sample.year) / sample.label / f"{sample.stem}.tif"


def png_path(root: str | Path, sample: SampleName, image_type: str, split: str) -> Path:
    """``OUT/{year}/{TYPE}/{split}/{CLASS}/NAME_{TYPE}.png``: one PNG of the published tree."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_NAMES)}")
    name = f"{sample.with_type(image_type)}.png"
    return Path(root) / str(sample.year) / image_type / split / sample.label / name


def raw_zip_path(root: str | Path, sample: SampleName) -> Path:
    """``OUT/raw/{year}/{CLASS}/NAME.zip``: the sample's single-band GeoTIFFs."""
    return Path(root) / "raw" / str(sample.year) / sample.label / f"{sample.stem}.zip"


FORMAT = "cropland-splits"
VERSION = 1


@dataclass(frozen=True)
class Splits:
    """Point id -> split name, with the seed and fractions that produced it."""

    assignments: dict[int, str]
    seed: int
    fractions: dict[str, float]

    def split_of(self, point_id: int) -> str:
        """The split of a point; a clear error for a point the splits do not know."""
        try:
            return self.assignments[int(point_id)]
        except KeyError:
            raise DatasetError(
                f"point {point_id} has no split in splits.json; the splits were made for "
                f"other points: rebuild them from the dataset's points table"
            ) from None

    def points(self, split: str) -> list[int]:
        """Sorted point ids of one split."""
        return sorted(p for p, s in self.assignments.items() if s == split)

    @property
    def sha256(self) -> str:
        """Checksum of the assignments (see :func:`assignments_sha256`)."""
        return assignments_sha256(self.assignments)


def _canonical(assignments: dict[int, str]) -> dict[str, str]:
    return {str(p): assignments[p] for p in sorted(assignments)}


def assignments_sha256(assignments: dict[int, str]) -> str:
    """SHA-256 of the assignments as compact JSON, keys in ascending point-id order."""
    text = json.dumps(_canonical(assignments), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_splits(splits: Splits, path: str | Path) -> Path:
    """Write ``splits.json`` (versioned, checksummed), atomically."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "seed": splits.seed,
        "fractions": splits.fractions,
        "sha256": splits.sha256,
        "assignments": _canonical(splits.assignments),
    }
    return write_text_atomic(path, json.dumps(doc, indent=1) + "\n")


def read_splits(path: str | Path) -> Splits:
    """Read and verify ``splits.json``; a modified or foreign file is a DatasetError."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist; build the dataset (or its splits) first")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
        if doc.get("version") != VERSION:
            raise ValueError(f"version {doc.get('version')!r} is not supported (only {VERSION})")
        assignments = {int(p): s for p, s in doc["assignments"].items()}
        splits = Splits(assignments, int(doc["seed"]), dict(doc["fractions"]))
        expected = doc["sha256"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path} is not a valid splits file: {e}") from None
    unknown = sorted(set(assignments.values()) - set(SPLIT_NAMES))
    if unknown:
        raise DatasetError(f"{path}: unknown split names {unknown}; use {', '.join(SPLIT_NAMES)}")
    if splits.sha256 != expected:
        raise DatasetError(
            f"{path}: checksum mismatch, the assignments were modified after writing "
            f"(sha256 {splits.sha256} != recorded {expected}); restore the file or "
            f"regenerate the splits"
        )
    return splits


class DatasetFolder:
    """A dataset folder (a build's ``OUT``): where its files are and what they hold."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DatasetFolder({str(self.root)!r})"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def points_path(self) -> Path:
        return self.root / POINTS_FILE

    @property
    def splits_path(self) -> Path:
        return self.root / SPLITS_FILE

    def tif_path(self, sample: SampleName) -> Path:
        return tif_path(self.root, sample)

    def png_path(self, sample: SampleName, image_type: str, split: str) -> Path:
        return png_path(self.root, sample, image_type, split)

    def raw_zip_path(self, sample: SampleName) -> Path:
        return raw_zip_path(self.root, sample)

    @cached_property
    def config_data(self) -> dict[str, Any]:
        """The build configuration as saved (a mapping; empty when there is no ``config.yaml``)."""
        import yaml

        if not self.config_path.exists():
            return {}
        try:
            data = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise DatasetError(f"{self.config_path} is not readable YAML ({e}); restore it") from None
        if not isinstance(data, dict):
            raise DatasetError(f"{self.config_path} must hold a mapping of build settings")
        return data

    def config(self) -> BuildConfig:
        """The validated configuration the dataset was built with."""
        from cropland.config import BuildConfig
        from cropland.configfile import validate

        if not self.config_path.exists():
            raise DatasetError(f"{self.config_path} does not exist; is {self.root} a dataset built by cropland?")
        cfg = validate(BuildConfig, self.config_data, str(self.config_path))
        return cfg.model_copy(update={"output": self.root})  # saved as ".": this folder

    def render(self) -> RenderConfig:
        """How the PNGs are rendered: the ``render:`` settings (defaults without a config)."""
        from cropland.config import RenderConfig
        from cropland.configfile import validate

        return validate(RenderConfig, self.config_data.get("render") or {}, f"{self.config_path} render")

    def splits(self) -> Splits:
        """The verified ``splits.json`` (a DatasetError when it is missing or modified)."""
        return read_splits(self.splits_path)

    def split_of(self) -> dict[int, str]:
        """Point id -> split; empty when the dataset has no ``splits.json`` yet."""
        return self.splits().assignments if self.splits_path.exists() else {}

    def samples(self) -> Iterator[tuple[SampleName, Path]]:
        """The samples, from the ``tif/`` tree, sorted by path (listed one folder at a time).

        Temporary files of interrupted writes (``.NAME.tif.*.cropland-tmp``) are not samples and are
        skipped; a ``.tif`` whose name is not a sample name is reported by name.
        """
        for path in self.tif_files():
            try:
                sample, _ = SampleName.parse(path.name)
            except NameFormatError as e:
                raise NameFormatError(f"{path}: {e}") from None
            yield sample, path

    def tif_files(self) -> Iterator[Path]:
        """The sample GeoTIFFs' paths, ``tif/{year}/{CLASS}/*.tif`` sorted, without parsing names."""
        for year in _subfolders(self.root / "tif"):
            for label in _subfolders(year):
                with os.scandir(label) as entries:
                    names = sorted(e.name for e in entries if e.name.endswith(".tif")
                                   and not e.name.startswith(".") and e.is_file())
                yield from (label / name for name in names)

    def count_samples(self) -> int:
        """How many sample GeoTIFFs ``tif/`` holds (a listing; no file is opened)."""
        return sum(1 for _ in self.tif_files())


def _subfolders(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    with os.scandir(path) as entries:
        return sorted(path / e.name for e in entries if e.is_dir())
