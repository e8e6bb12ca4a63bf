"""Splits as the training loop sees them: batches prepared on the device.

Two ways to hold a split, with the same batches (same order, same values, bit for bit):

* :class:`TensorSplit`, the fast path: the whole split resident on the device. Each sample
  image is held once (``pool``, in its stored dtype: uint8 for PNG data, float16/float32 for
  reflectance; float32 when resized at load) with a row table into it (one row per item;
  ``T`` rows per temporal item, -1 for a missing month).
* :class:`~cropland.data.stream.StreamSplit`: batches read from the dataset by DataLoader
  workers (memory-mapped packed arrays), for splits that do not fit the device.

Either way a batch is gathered, scaled, resized and normalised
(:class:`~cropland.data.preprocess.Preprocessing`) and augmented on the device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from cropland.data.augment import random_dihedral
from cropland.data.datasets import _CropDataset, pixel_scale, read_chunks
from cropland.data.preprocess import Preprocessing


@dataclass
class Batch:
    """One batch: ``x`` (B, C, H, W) or (B, T, C, H, W) float32, ``mask`` (B, T) or None, ``y``."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None
    months: torch.Tensor
    index: torch.Tensor


def prepare_batch(
    raw: torch.Tensor, present: torch.Tensor | None, scale: float, preprocessing: Preprocessing,
    augment: bool = False, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stored values -> model input: scale, resize, normalise (NaN -> 0), zero missing months, augment."""
    x = raw.float()
    if scale != 1.0:
        x = x * scale
    x = preprocessing.normalise(preprocessing.resize_images(x))
    if present is not None:
        x = x * present[..., None, None, None]
    return random_dihedral(x, generator) if augment else x


class Split:
    """What the training loop needs of a split: items, labels, names and :meth:`batches`."""

    rows: torch.Tensor
    labels: torch.Tensor
    months: torch.Tensor
    names: list[str]  # a readable identity of every item, in order (see ``item_names`` of the datasets)

    def __len__(self) -> int:
        return self.rows.shape[0]

    @property
    def device(self) -> torch.device:
        """Where batches are made."""
        return self.labels.device

    @property
    def temporal(self) -> bool:
        """True when items are sequences of months."""
        return self.rows.dim() == 2

    def order(self, shuffle: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Item order of one pass: a permutation drawn on the generator's device, or 0..N-1."""
        n = len(self)
        if not shuffle:
            return torch.arange(n)
        return torch.randperm(n, generator=generator, device=generator.device if generator else "cpu")

    def batches(
        self, batch_size: int, shuffle: bool = False, augment: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """All items in batches; the last batch may be smaller (no item is dropped)."""
        raise NotImplementedError


@dataclass(eq=False)
class TensorSplit(Split):
    """A split resident on a device (see the module docstring)."""

    pool: torch.Tensor
    rows: torch.Tensor
    labels: torch.Tensor
    months: torch.Tensor
    scale: float
    names: list[str]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    def batch(self, index: torch.Tensor, augment: bool = False, generator: torch.Generator | None = None) -> Batch:
        """Gather and prepare the items ``index`` (see :func:`prepare_batch`)."""
        index = index.to(self.rows.device)
        rows = self.rows[index]
        present = rows >= 0 if self.temporal else None
        x = prepare_batch(self.pool[rows.clamp(min=0)], present, self.scale, self.preprocessing, augment, generator)
        return Batch(x, self.labels[index], present, self.months[index], index)

    def batches(
        self, batch_size: int, shuffle: bool = False, augment: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        order = self.order(shuffle, generator).to(self.rows.device)
        for start in range(0, len(self), batch_size):
            yield self.batch(order[start : start + batch_size], augment, generator)


def load_tensors(
    dataset: _CropDataset, preprocessing: Preprocessing, device: str | torch.device = "cpu"
) -> TensorSplit:
    """Read every sample of ``dataset`` once, chunk by chunk, into a pool on ``device``.

    Images are cropped as read (``dataset.size``) and, with ``preprocessing.resize``, averaged
    down once here (the CPU profile of the benchmark uses it); host memory holds one chunk
    beyond the pool (none beyond it when the device is a GPU).
    """
    rows = dataset.rows
    unique, inverse = np.unique(rows[rows >= 0], return_inverse=True)
    table = np.full(rows.shape, -1, dtype=np.int64)
    table[rows >= 0] = inverse
    pool, start, scale = None, 0, 1.0
    for block in read_chunks(dataset, unique, f"load {dataset.split}"):
        chunk, scale = torch.from_numpy(np.ascontiguousarray(block)), pixel_scale(block.dtype)
        if preprocessing.resize is not None and chunk.shape[-1] != preprocessing.resize:
            chunk, scale = preprocessing.resize_images(chunk.float() * scale), 1.0
        if pool is None:
            pool = torch.empty((len(unique),) + tuple(chunk.shape[1:]), dtype=chunk.dtype, device=device)
        pool[start : start + len(chunk)] = chunk.to(device)
        start += len(chunk)
    assert pool is not None  # a dataset has items (an empty split is refused when it is opened)
    return TensorSplit(
        pool=pool,
        rows=torch.from_numpy(table).to(device),
        labels=torch.from_numpy(dataset.labels).to(device),
        months=torch.from_numpy(item_months(dataset)).to(device),
        scale=scale,
        names=dataset.item_names(),
        preprocessing=preprocessing,
    )


def item_months(dataset: _CropDataset) -> np.ndarray:
    """The calendar month of every item (``(N,)``, or ``(N, T)`` with 0 for a missing month)."""
    records = dataset.reader.records
    lookup = np.array([r.name.month for r in records] + [0], dtype=np.int64)
    return lookup[dataset.rows]  # -1 indexes the trailing 0: missing months read as month 0


def resident_bytes(dataset: _CropDataset, preprocessing: Preprocessing) -> int:
    """Bytes the split's pool takes on the device (:func:`load_tensors`), from one sample."""
    rows = dataset.rows
    samples = len(np.unique(rows[rows >= 0]))
    one = dataset.reader.read_many([int(rows[rows >= 0][0])], dataset.channels, dataset.size)
    if preprocessing.resize is not None and one.shape[-1] != preprocessing.resize:
        return samples * one.shape[1] * preprocessing.resize**2 * 4
    return samples * one[0].nbytes


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device``: the GPU's free memory, or the host's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
