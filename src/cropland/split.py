"""Training/validation/test splits grouped by point, stratified by class.

A point is in exactly one split for every year and image type, so no field is seen in
training one year and tested another (a defect of the original code). Points are
stratified by their most frequent class over the years (ties: the alphabetically first
class); within each class the points are shuffled by a generator seeded with the seed and
the class name, and the split sizes are rounded with the largest-remainder method, so each
split's share of a class's points is within ``1 / n`` of its fraction (``n`` points in the
class). With 70/15/15 that is within 2 percentage points for every class of 20 points or
more, except 22, 23, 24, 29 and 31 points, sizes for which no integer split is that close.

The file (``splits.json``, see ``docs/format.md``) is versioned and carries the SHA-256 of
its assignments, checked on reading.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cropland.config import SplitConfig
from cropland.errors import DatasetError
from cropland.export.layout import SPLIT_NAMES
from cropland.io import write_text_atomic

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


def majority_class(points: pd.DataFrame) -> pd.Series:
    """Each point's most frequent label over its years; ties go to the first name."""
    counts = points.groupby(["point_id", "label"]).size().rename("n").reset_index()
    counts = counts.sort_values(["point_id", "n", "label"], ascending=[True, False, True])
    return counts.drop_duplicates("point_id").set_index("point_id")["label"]


def largest_remainder(n: int, fractions: list[float]) -> list[int]:
    """Split ``n`` into integer counts proportional to ``fractions`` (Hamilton's method).

    Each count is the floor of its quota, plus one for the largest fractional remainders
    (ties: the earlier split) until the counts sum to ``n``.
    """
    quotas = [n * f for f in fractions]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _class_rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(label.encode())])


def make_splits(points: pd.DataFrame, fractions: SplitConfig, seed: int) -> Splits:
    """Assign every point of a points table (one row per point and year) to one split.

    Args:
        points: needs columns ``point_id`` and ``label``.
        fractions: training/validation/test fractions.
        seed: the same seed and points give the same splits.
    """
    shares = [getattr(fractions, name) for name in SPLIT_NAMES]
    strata = majority_class(points)
    assignments: dict[int, str] = {}
    for label, ids in strata.groupby(strata, sort=True):
        point_ids = np.sort(ids.index.to_numpy())
        _class_rng(seed, str(label)).shuffle(point_ids)
        counts = largest_remainder(len(point_ids), shares)
        names = np.repeat(SPLIT_NAMES, counts)
        assignments.update(zip(point_ids.tolist(), names.tolist(), strict=True))
    fractions_used = dict(zip(SPLIT_NAMES, shares, strict=True))
    return Splits(dict(sorted(assignments.items())), seed, fractions_used)


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
