"""The fast path: a whole split as tensors on the training device.

A :class:`TensorSplit` holds each sample image once (``pool``, in its stored dtype: uint8
for PNG data, float16/float32 for reflectance) and a row table into it (one row per item;
``T`` rows per temporal item, -1 for a missing month). A batch is gathered, scaled,
normalised and augmented on the device, so training reads no file and decodes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cropland.data.augment import random_dihedral
from cropland.data.datasets import Normalization, _CropDataset, pixel_scale, read_chunks


@dataclass
class Batch:
    """One batch: ``x`` (B, C, H, W) or (B, T, C, H, W) float32, ``mask`` (B, T) or None, ``y``."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None
    months: torch.Tensor
    index: torch.Tensor


@dataclass
class TensorSplit:
    """A split resident on a device (see the module docstring)."""

    pool: torch.Tensor
    rows: torch.Tensor
    labels: torch.Tensor
    months: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    scale: float
    names: list[str]

    def __len__(self) -> int:
        return self.rows.shape[0]

    @property
    def temporal(self) -> bool:
        """True when items are sequences of months."""
        return self.rows.dim() == 2

    def batch(self, index: torch.Tensor, augment: bool = False, generator: torch.Generator | None = None) -> Batch:
        """Gather, scale, normalise (NaN -> 0, missing months -> 0) and optionally augment."""
        index = index.to(self.rows.device)
        rows = self.rows[index]
        x = self.pool[rows.clamp(min=0)].float()
        if self.scale != 1.0:
            x = x * self.scale
        x = torch.nan_to_num((x - self.mean) / self.std, nan=0.0, posinf=0.0, neginf=0.0)
        mask = None
        if self.temporal:
            mask = rows >= 0
            x = x * mask[..., None, None, None]
        if augment:
            x = random_dihedral(x, generator)
        return Batch(x, self.labels[index], mask, self.months[index], index)

    def batches(
        self, batch_size: int, shuffle: bool = False, augment: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """All items in batches; the last batch may be smaller (no item is dropped)."""
        n = len(self)
        device = self.rows.device
        order = torch.randperm(n, generator=generator, device=device) if shuffle else torch.arange(n, device=device)
        for start in range(0, n, batch_size):
            yield self.batch(order[start : start + batch_size], augment, generator)


def load_tensors(
    dataset: _CropDataset, normalization: Normalization, device: str | torch.device = "cpu", resize: int | None = None
) -> TensorSplit:
    """Read every sample of ``dataset`` once and put the split on ``device``.

    ``resize`` averages the images down to ``resize`` x ``resize`` pixels (area
    interpolation) once at load time: the CPU profile of the benchmark uses it.
    """
    rows = dataset.rows
    unique, inverse = np.unique(rows[rows >= 0], return_inverse=True)
    table = np.full(rows.shape, -1, dtype=np.int64)
    table[rows >= 0] = inverse
    pool_np = _read_pool(dataset, unique)
    scale = pixel_scale(pool_np.dtype)
    pool = torch.from_numpy(np.ascontiguousarray(pool_np))
    if resize is not None and pool.shape[-1] != resize:
        pool = F.interpolate(pool.float() * scale, size=(resize, resize), mode="area")
        scale = 1.0
    shape = (-1, 1, 1)
    months = _item_months(dataset)
    return TensorSplit(
        pool=pool.to(device),
        rows=torch.from_numpy(table).to(device),
        labels=torch.from_numpy(dataset.labels).to(device),
        months=torch.from_numpy(months).to(device),
        mean=torch.tensor(normalization.mean, dtype=torch.float32).view(shape).to(device),
        std=torch.tensor(normalization.std, dtype=torch.float32).view(shape).to(device),
        scale=scale,
        names=dataset.item_names(),
    )


def _read_pool(dataset: _CropDataset, rows: np.ndarray) -> np.ndarray:
    """Every sample of ``rows`` in one preallocated array (stored dtype kept)."""
    pool = None
    start = 0
    for block in read_chunks(dataset, rows, f"load {dataset.split}"):
        if pool is None:
            pool = np.empty((len(rows),) + block.shape[1:], block.dtype)
        pool[start : start + len(block)] = block
        start += len(block)
    return pool


def _item_months(dataset: _CropDataset) -> np.ndarray:
    records = dataset.reader.records
    lookup = np.array([r.name.month for r in records] + [0], dtype=np.int64)
    return lookup[dataset.rows]  # -1 indexes the trailing 0: missing months read as month 0
