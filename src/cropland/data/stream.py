"""Training that streams: batches read from the dataset while the device trains.

For splits that do not fit the device. A ``DataLoader`` whose workers each read a whole
batch of items (one sorted read of the memory-mapped packed arrays, or the files of another
reader), in their stored dtype, into pinned memory, several batches ahead; the device then
scales, resizes, normalises and augments them exactly as for a resident split
(:func:`~cropland.data.tensors.prepare_batch`), in the same order. A run holds a few
batches, not the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cropland.data.datasets import _CropDataset, pixel_scale
from cropland.data.preprocess import Preprocessing
from cropland.data.tensors import Batch, Split, item_months, prepare_batch


class _BatchReader(Dataset):
    """Worker side: ``reader[items]`` is the stored images of those items and their indices."""

    def __init__(self, dataset: _CropDataset) -> None:
        self.reader, self.rows = dataset.reader, dataset.rows
        self.channels, self.size = dataset.channels, dataset.size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, items: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.rows[items]
        present = rows >= 0
        unique, inverse = np.unique(rows[present], return_inverse=True)
        block = self.reader.read_many(unique.tolist(), self.channels, self.size)
        if rows.ndim == 1:
            images = block[inverse]
        else:
            images = np.zeros(rows.shape + block.shape[1:], block.dtype)
            images[present] = block[inverse]
        return torch.from_numpy(images), torch.from_numpy(np.asarray(items))


class StreamSplit(Split):
    """A split read batch by batch (see the module docstring).

    Args:
        dataset: the split (unnormalised; its ``size`` crops as read).
        preprocessing: resize and normalisation, applied on ``device``.
        device: where batches are prepared and the model trains.
        workers: DataLoader worker processes (0 reads in the training process).
        prefetch: batches each worker reads ahead.
    """

    def __init__(self, dataset: _CropDataset, preprocessing: Preprocessing, device: str | torch.device = "cpu",
                 workers: int = 2, prefetch: int = 4) -> None:
        device = torch.device(device)
        self.dataset, self.preprocessing, self.workers, self.prefetch = dataset, preprocessing, workers, prefetch
        self.rows = torch.from_numpy(dataset.rows).to(device)
        self.labels = torch.from_numpy(dataset.labels).to(device)
        self.months = torch.from_numpy(item_months(dataset)).to(device)
        first = dataset.rows[dataset.rows >= 0][:1].tolist()
        self.scale = pixel_scale(dataset.reader.read_many(first, dataset.channels, dataset.size).dtype)
        self._reader = _BatchReader(dataset)
        self.names = dataset.item_names()

    def batches(
        self, batch_size: int, shuffle: bool = False, augment: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        order = self.order(shuffle, generator).cpu().numpy()
        chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        loader = DataLoader(
            self._reader, sampler=chunks, batch_size=None, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", prefetch_factor=self.prefetch if self.workers else None,
            generator=torch.Generator(),  # its own: drawing worker seeds must not move the global RNG (dropout)
        )
        for raw, items in loader:
            index = items.to(self.device, non_blocking=True)
            present = self.rows[index] >= 0 if self.temporal else None
            raw = raw.to(self.device, non_blocking=True)
            x = prepare_batch(raw, present, self.scale, self.preprocessing, augment, generator)
            yield Batch(x, self.labels[index], present, self.months[index], index)
