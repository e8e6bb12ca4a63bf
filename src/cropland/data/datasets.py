"""PyTorch datasets over any reader: static (one sample) and temporal (months of a point-year).

Sample dictionaries (``C`` channels, ``H`` x ``W`` pixels, ``T`` months):

=============  =====================  ========================================================
key            static                 temporal
=============  =====================  ========================================================
``image``      float32 ``(C, H, W)``  float32 ``(T, C, H, W)``, zeros where a month is missing
``label``      int64 ``()``           int64 ``()`` (the point's class in that year)
``mask``       --                     bool ``(T,)``: True where the month is present
``months``     int64 ``()``           int64 ``(T,)``: calendar month of each step, 0 if missing
``point_id``   int                    int
``year``       int                    int
=============  =====================  ========================================================

Images are normalised with per-channel statistics of the training split when a
:class:`Normalization` is given; NaN (no clear observation) becomes 0 after normalisation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from cropland.core.naming import SampleName
from cropland.data.readers import Reader, center_crop, selected_channels
from cropland.errors import DatasetError

#: The months of the dataset: June to October.
DEFAULT_MONTHS: tuple[int, ...] = (6, 7, 8, 9, 10)
TemporalMode = Literal["triplet", "series"]


@dataclass
class Normalization:
    """Per-channel mean and standard deviation (in reader units), keyed by channel name."""

    channels: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{channel: {"mean": m, "std": s}}`` (JSON-ready)."""
        return {c: {"mean": float(m), "std": float(s)} for c, m, s in zip(self.channels, self.mean, self.std, strict=True)}

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, float]]) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        names = tuple(data)
        return cls(names, np.array([data[c]["mean"] for c in names]), np.array([data[c]["std"] for c in names]))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Normalise a ``(..., C, H, W)`` array; NaN -> 0."""
        shape = (-1, 1, 1)
        out = (image - self.mean.reshape(shape).astype(np.float32)) / self.std.reshape(shape).astype(np.float32)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


class _CropDataset(Dataset):
    """Shared parts: reader, split, channel selection, row table and normalisation."""

    rows: np.ndarray

    def __init__(
        self,
        reader: Reader,
        split: str,
        channels: str | Sequence[str] = "RGB",
        months: Sequence[int] = DEFAULT_MONTHS,
        size: int | None = None,
        normalization: Normalization | None = None,
    ) -> None:
        self.reader = reader
        self.split = split
        self.channels = selected_channels(reader, channels)
        self.months = tuple(months)
        self.size = size
        self.normalization = normalization
        self.classes = reader.classes
        if normalization is not None and normalization.channels != self.channels:
            raise DatasetError(
                f"normalisation statistics are for {normalization.channels}, the dataset reads {self.channels}"
            )
        self.indices = [
            i for i, r in enumerate(reader.records) if r.split == split and r.name.month in self.months
        ]
        if not self.indices:
            raise DatasetError(f"split {split!r} of {reader.root} has no samples in months {self.months}")

    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, row: int) -> np.ndarray:
        name = self.reader.records[row].name
        image = center_crop(self.reader.read(row, self.channels), self.size, self.reader.expected_path(name))
        return self.normalization.apply(image) if self.normalization else image

    def _label(self, row: int) -> int:
        return self.reader.label_index(self.reader.records[row].name.label)

    @property
    def labels(self) -> np.ndarray:
        """Class index of every item, in item order."""
        first = self.rows if self.rows.ndim == 1 else self.rows.max(axis=1)
        return np.array([self._label(int(r)) for r in first], dtype=np.int64)

    def item_names(self) -> list[str]:
        """A readable identity of every item (``POINT_2_2019_AB_BARLEY`` + months), in order."""
        out = []
        for row in self.rows:
            present = [int(r) for r in np.atleast_1d(row) if r >= 0]
            n = self.reader.records[present[0]].name
            months = "".join(f"{self.reader.records[r].name.month:02d}" for r in present)
            out.append(f"POINT_{n.point_id}_{n.year}_{n.province}_{n.label}_m{months}")
        return out


class StaticDataset(_CropDataset):
    """One item per sample (one point, one month of one year)."""

    def __init__(self, reader: Reader, split: str, channels: str | Sequence[str] = "RGB", **kwargs) -> None:
        super().__init__(reader, split, channels, **kwargs)
        self.rows = np.array(self.indices, dtype=np.int64)

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i])
        name = self.reader.records[row].name
        return {
            "image": torch.from_numpy(np.ascontiguousarray(self._image(row), dtype=np.float32)),
            "label": torch.tensor(self._label(row)),
            "months": torch.tensor(name.month),
            "point_id": name.point_id,
            "year": name.year,
        }


class TemporalDataset(_CropDataset):
    """The months of one point and year.

    Args:
        mode: ``triplet``: every run of three consecutive months that are all present (the
            paper's protocol; shorter runs are skipped). ``series``: one item per point-year
            with every month of ``months`` and a mask of the missing ones.
        missing: ``mask`` (default) or ``error``: raise, naming the missing file, when a
            series lacks a month.
    """

    def __init__(
        self,
        reader: Reader,
        split: str,
        channels: str | Sequence[str] = "RGB",
        mode: TemporalMode = "series",
        missing: Literal["mask", "error"] = "mask",
        **kwargs,
    ) -> None:
        super().__init__(reader, split, channels, **kwargs)
        self.mode = mode
        groups = self._group()
        if mode == "triplet":
            self.rows = _triplets(groups, self.months)
        elif mode == "series":
            self.rows = self._series(groups, missing)
        else:
            raise DatasetError(f"unknown temporal mode {mode!r}; use triplet or series")

    def _group(self) -> dict[tuple[int, int], dict[int, int]]:
        groups: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
        labels: dict[tuple[int, int], str] = {}
        for i in self.indices:
            n = self.reader.records[i].name
            key = (n.point_id, n.year)
            if labels.setdefault(key, n.label) != n.label:
                raise DatasetError(
                    f"point {n.point_id} has two classes in {n.year} ({labels[key]}, {n.label}): "
                    f"{self.reader.expected_path(n)}"
                )
            groups[key][n.month] = i
        return dict(sorted(groups.items()))

    def _series(self, groups: dict[tuple[int, int], dict[int, int]], missing: str) -> np.ndarray:
        rows = np.full((len(groups), len(self.months)), -1, dtype=np.int64)
        for g, by_month in enumerate(groups.values()):
            for t, month in enumerate(self.months):
                rows[g, t] = by_month.get(month, -1)
            if missing == "error" and (rows[g] < 0).any():
                first = self.reader.records[next(iter(by_month.values()))].name
                gone = [m for m in self.months if m not in by_month]
                path = self.reader.expected_path(
                    SampleName(first.point_id, first.year, gone[0], first.province, first.label)
                )
                raise DatasetError(f"month {first.year}-{gone[0]:02d} of point {first.point_id} is missing: {path}")
        return rows

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        present = row >= 0
        first = int(row[present][0])
        images = [self._image(int(r)) for r in row[present]]
        stack = np.zeros((len(row),) + images[0].shape, dtype=np.float32)
        stack[present] = np.stack(images)
        name = self.reader.records[first].name
        months = np.array([self.reader.records[int(r)].name.month if r >= 0 else 0 for r in row])
        return {
            "image": torch.from_numpy(stack),
            "label": torch.tensor(self._label(first)),
            "mask": torch.from_numpy(present.copy()),
            "months": torch.from_numpy(months.copy()),
            "point_id": name.point_id,
            "year": name.year,
        }


def _triplets(groups: dict[tuple[int, int], dict[int, int]], months: Sequence[int]) -> np.ndarray:
    rows = [
        [by_month[m], by_month[m + 1], by_month[m + 2]]
        for by_month in groups.values()
        for m in months
        if m + 2 in months and all(k in by_month for k in (m, m + 1, m + 2))
    ]
    if not rows:
        raise DatasetError("no point-year has three consecutive months; use mode='series'")
    return np.array(rows, dtype=np.int64)


def compute_stats(dataset: _CropDataset, chunk: int = 512) -> Normalization:
    """Per-channel mean and standard deviation over every pixel of the dataset's samples.

    Call it on the training split and pass the result to every split. NaN is ignored.
    """
    rows = np.unique(dataset.rows[dataset.rows >= 0])
    channels = dataset.channels
    total = np.zeros(len(channels))
    squares = np.zeros(len(channels))
    count = np.zeros(len(channels))
    for block in read_chunks(dataset, rows, f"statistics of {dataset.split}", chunk):
        block = block.astype(np.float64) * pixel_scale(block.dtype)
        valid = ~np.isnan(block)
        total += np.where(valid, block, 0).sum(axis=(0, 2, 3))
        squares += np.where(valid, block**2, 0).sum(axis=(0, 2, 3))
        count += valid.sum(axis=(0, 2, 3))
    mean = total / np.maximum(count, 1)
    std = np.sqrt(np.maximum(squares / np.maximum(count, 1) - mean**2, 0))
    return Normalization(channels, mean, np.where(std > 1e-6, std, 1.0))


def read_chunks(dataset: _CropDataset, rows: np.ndarray, description: str, chunk: int = 512) -> Iterator[np.ndarray]:
    """The samples ``rows`` of the dataset's reader, ``chunk`` at a time, with a progress bar."""
    from rich.progress import Progress

    with Progress(transient=True, disable=len(rows) <= chunk) as progress:
        task = progress.add_task(description, total=len(rows))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk].tolist()
            yield dataset.reader.read_many(part, dataset.channels, dataset.size)
            progress.advance(task, len(part))


def pixel_scale(dtype: np.dtype) -> float:
    """Factor from stored values to reader units: 1/255 for uint8 images, else 1."""
    return 1 / 255 if np.dtype(dtype) == np.uint8 else 1.0
