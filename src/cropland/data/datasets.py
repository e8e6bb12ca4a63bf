"""PyTorch datasets over a dataset folder or any reader: static (one sample) and temporal
(the months of a point-year), in the shape TorchGeo's datasets have.

``StaticDataset("demo-out", split="training", channels="RGB")`` opens the folder with
:func:`~cropland.data.readers.open_reader` (packed arrays, GeoTIFFs, a PNG tree, a release);
a :class:`~cropland.data.readers.Reader` can be given instead of the path. Sample
dictionaries (``C`` channels, ``H`` x ``W`` pixels, ``T`` months):

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

Labels index :attr:`classes`: the dataset's declared classes (its configuration), or a list
given by the caller, never only the labels one split or year happens to hold. Images are
prepared by :class:`~cropland.data.preprocess.Preprocessing` (crop to ``size``, normalise
with the training split's statistics when a :class:`Normalization` is given; NaN -> 0), then
``transforms`` (a function of the sample dict) is applied. :meth:`plot` draws a sample.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from cropland.core.naming import SampleName
from cropland.data.channels import PNG_RGB_CHANNELS
from cropland.data.preprocess import Normalization, Preprocessing
from cropland.data.readers import SPLITS, Reader, check_classes, open_reader, selected_channels
from cropland.errors import DatasetError

__all__ = ["DEFAULT_MONTHS", "Normalization", "StaticDataset", "TemporalDataset", "compute_stats"]

#: The months of the dataset: June to October.
DEFAULT_MONTHS: tuple[int, ...] = (6, 7, 8, 9, 10)
TemporalMode = Literal["triplet", "series"]
Transform = Callable[[dict], dict]
#: Reflectance shown at full brightness by :meth:`plot` (the PNGs' default ``rgb_max``).
PLOT_RGB_MAX = 0.3


class _CropDataset(Dataset):
    """Shared parts: reader, split, channels, classes, row table, preprocessing and plot."""

    rows: np.ndarray

    def __init__(
        self,
        root: str | Path | Reader,
        split: str = "training",
        channels: str | Sequence[str] = "RGB",
        transforms: Transform | None = None,
        classes: Sequence[str] | None = None,
        months: Sequence[int] = DEFAULT_MONTHS,
        size: int | None = None,
        normalization: Normalization | None = None,
        source: str = "auto",
    ) -> None:
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        self.reader = root if isinstance(root, Reader) else open_reader(root, channels, source)
        self.root = self.reader.root
        self.split = split
        self.channels = selected_channels(self.reader, channels)
        self.transforms = transforms
        self.months = tuple(months)
        self.size = size
        self.normalization = normalization
        if normalization is not None and normalization.channels != self.channels:
            raise DatasetError(
                f"normalisation statistics are for {normalization.channels}, the dataset reads {self.channels}"
            )
        self.indices = [
            i for i, r in enumerate(self.reader.records) if r.split == split and r.name.month in self.months
        ]
        if not self.indices:
            raise DatasetError(f"split {split!r} of {self.reader.root} has no samples in months {self.months}")
        self.classes = self.reader.classes if classes is None else check_classes(
            (self.reader.records[i] for i in self.indices), classes, f"split {split} of {self.reader.root}")
        self._class_index = {c: i for i, c in enumerate(self.classes)}

    @property
    def preprocessing(self) -> Preprocessing:
        """How items are prepared: crop to ``size``, normalise with ``normalization``."""
        return Preprocessing(self.size, None, self.normalization)

    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, row: int) -> torch.Tensor:
        image = self.reader.read(row, self.channels)
        if self.size is not None and min(image.shape[-2:]) < self.size:
            name = self.reader.records[row].name
            raise DatasetError(
                f"{self.reader.expected_path(name)} is {image.shape[-2]} x {image.shape[-1]} pixels, "
                f"smaller than the size {self.size} asked for"
            )
        return self.preprocessing(image)

    def _label(self, row: int) -> int:
        return self._class_index[self.reader.records[row].name.label]

    def _transformed(self, sample: dict) -> dict:
        return self.transforms(sample) if self.transforms is not None else sample

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

    def plot(self, sample: dict, show_titles: bool = True, suptitle: str | None = None):
        """A matplotlib figure of a sample: RGB when the channels hold it, else the first channel;
        one panel per month for a temporal sample. The title gives the class and, when the
        sample has a ``prediction`` (a class index), the prediction."""
        from matplotlib.figure import Figure

        image = np.asarray(sample["image"], dtype=np.float32)
        frames = image if image.ndim == 4 else image[None]
        present = np.asarray(sample.get("mask", np.ones(len(frames), bool)), dtype=bool).reshape(-1)
        months = np.atleast_1d(np.asarray(sample.get("months", 0)))
        figure = Figure(figsize=(2.6 * len(frames), 3.0 if len(frames) > 1 else 3.4), layout="constrained")
        axes = figure.subplots(1, len(frames), squeeze=False)[0]
        for t, (ax, frame) in enumerate(zip(axes, frames, strict=True)):
            shown = self._display(frame)
            ax.imshow(shown, cmap=None if shown.ndim == 3 else "viridis")
            ax.set_axis_off()
            if len(frames) > 1:
                ax.set_title(f"month {int(months[t]):02d}" if present[t] else "missing", fontsize=9)
        if show_titles:
            title = f"label: {self.classes[int(sample['label'])]}"
            if "prediction" in sample:
                title += f"   prediction: {self.classes[int(sample['prediction'])]}"
            figure.suptitle(title if suptitle is None else f"{suptitle}\n{title}")
        elif suptitle is not None:
            figure.suptitle(suptitle)
        return figure

    def _display(self, frame: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` RGB in 0-1, or ``(H, W)`` of the first channel."""
        rgb = [self.channels.index(c) for c in ("B4", "B3", "B2") if c in self.channels]
        png = [self.channels.index(c) for c in PNG_RGB_CHANNELS if c in self.channels]
        picked = rgb if len(rgb) == 3 else png if len(png) == 3 else None
        if picked is None:
            return np.nan_to_num(frame[0])
        values = np.nan_to_num(frame[picked])
        if self.normalization is not None:  # normalised: stretch each channel to its 2-98 % range
            low, high = np.percentile(values, (2, 98), axis=(1, 2), keepdims=True)
            values = (values - low) / np.maximum(high - low, 1e-6)
        elif len(rgb) == 3:  # reflectance, shown as the PNGs render it
            values = values / PLOT_RGB_MAX
        return np.clip(values, 0, 1).transpose(1, 2, 0)


class StaticDataset(_CropDataset):
    """One item per sample (one point, one month of one year).

    Args:
        root: a dataset folder (packed, GeoTIFF build, PNG tree, release) or a reader.
        split: ``training``, ``validation`` or ``test`` (the dataset's own split of points).
        channels: ``RGB``, an index, a band, ``bands``, ``all`` or a comma list.
        transforms: a function of the sample dict, applied last.
        classes: the class list labels index (default: the dataset's declared classes).
        months: the months to use.
        size: centre-crop images to this many pixels (65 -> 64).
        normalization: per-channel statistics (of the training split: :func:`compute_stats`).
        source: which reader opens ``root`` (``auto``, ``packed``, ``tif``, ``png``, ...).
    """

    def __init__(self, root: str | Path | Reader, split: str = "training", channels: str | Sequence[str] = "RGB",
                 **kwargs) -> None:
        super().__init__(root, split, channels, **kwargs)
        self.rows = np.array(self.indices, dtype=np.int64)

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i])
        name = self.reader.records[row].name
        return self._transformed({
            "image": self._image(row),
            "label": torch.tensor(self._label(row)),
            "months": torch.tensor(name.month),
            "point_id": name.point_id,
            "year": name.year,
        })


class TemporalDataset(_CropDataset):
    """The months of one point and year.

    Takes the arguments of :class:`StaticDataset`, and:

    Args:
        mode: ``triplet``: every run of three consecutive months that are all present (the
            paper's protocol; shorter runs are skipped). ``series``: one item per point-year
            with every month of ``months`` and a mask of the missing ones.
        missing: ``mask`` (default) or ``error``: raise, naming the missing file, when a
            series lacks a month.
    """

    def __init__(
        self,
        root: str | Path | Reader,
        split: str = "training",
        channels: str | Sequence[str] = "RGB",
        mode: TemporalMode = "series",
        missing: Literal["mask", "error"] = "mask",
        **kwargs,
    ) -> None:
        super().__init__(root, split, channels, **kwargs)
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
        images = torch.stack([self._image(int(r)) for r in row[present]])
        stack = torch.zeros((len(row),) + images.shape[1:], dtype=torch.float32)
        stack[torch.from_numpy(present)] = images
        name = self.reader.records[first].name
        months = np.array([self.reader.records[int(r)].name.month if r >= 0 else 0 for r in row])
        return self._transformed({
            "image": stack,
            "label": torch.tensor(self._label(first)),
            "mask": torch.from_numpy(present.copy()),
            "months": torch.from_numpy(months),
            "point_id": name.point_id,
            "year": name.year,
        })


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
        values = block.astype(np.float32) * np.float32(pixel_scale(block.dtype))
        valid = ~np.isnan(values)
        values[~valid] = 0
        total += values.sum(axis=(0, 2, 3), dtype=np.float64)
        squares += np.square(values).sum(axis=(0, 2, 3), dtype=np.float64)
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
