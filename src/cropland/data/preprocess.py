"""A model's input, defined once: centre crop -> area resize -> per-channel normalisation.

:class:`Preprocessing` is used by every path that feeds a model: the datasets' items, the
device-resident splits and the streamed batches of training (:mod:`cropland.data.tensors`,
:mod:`cropland.data.stream`), and prediction (:mod:`cropland.train.predict`), so the three
cannot drift apart. Images are in reader units (reflectance, or PNG values / 255), shaped
``(..., C, H, W)``; NaN (no clear observation) becomes 0 after normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from cropland.data.readers import center_crop


@dataclass
class Normalization:
    """Per-channel mean and standard deviation (in reader units), keyed by channel name."""

    channels: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{channel: {"mean": m, "std": s}}`` (JSON-ready)."""
        return {
            c: {"mean": float(m), "std": float(s)} for c, m, s in zip(self.channels, self.mean, self.std, strict=True)
        }

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, float]]) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        names = tuple(data)
        return cls(names, np.array([data[c]["mean"] for c in names]), np.array([data[c]["std"] for c in names]))


@dataclass(frozen=True)
class Preprocessing:
    """Crop to ``size`` (when larger), resize to ``resize`` (area), normalise (when given)."""

    size: int | None = None
    resize: int | None = None
    normalization: Normalization | None = None
    _stats: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """Centre crop of the last two axes to ``size``; an image at or below ``size`` is kept."""
        if self.size is None or min(images.shape[-2:]) <= self.size:
            return images
        return center_crop(images, self.size, "")

    def resize_images(self, images: torch.Tensor) -> torch.Tensor:
        """Average float images down (or up) to ``resize`` x ``resize``; NaN spoils its area."""
        if self.resize is None or tuple(images.shape[-2:]) == (self.resize, self.resize):
            return images
        lead = images.shape[:-3]
        flat = images.reshape(-1, *images.shape[-3:])
        out = F.interpolate(flat, size=(self.resize, self.resize), mode="area")
        return out.reshape(*lead, *out.shape[-3:])

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per channel, NaN and infinities -> 0."""
        if self.normalization is None:
            return torch.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
        mean, std = self._device_stats(images.device)
        return torch.nan_to_num((images - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Crop, resize and normalise float images (a NumPy array is converted first)."""
        x = torch.as_tensor(images, dtype=torch.float32)
        return self.normalise(self.resize_images(self.crop(x)))

    def _device_stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._stats:
            n = self.normalization
            assert n is not None  # normalise() asks only with one
            as_tensor = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32).view(-1, 1, 1).to(device)  # noqa: E731
            self._stats[device] = (as_tensor(n.mean), as_tensor(n.std))
        return self._stats[device]
