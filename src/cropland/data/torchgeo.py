"""TorchGeo-style access to a published release: a dataset class and a Lightning DataModule.

:class:`CanadianCropland` follows TorchGeo's conventions (``root, split, bands, transforms,
download, checksum``; samples are ``{"image", "label"}`` dicts; ``plot``) and is a
``torchgeo.datasets.NonGeoDataset`` when TorchGeo is installed, a plain PyTorch dataset
otherwise. :class:`CanadianCroplandDataModule` (TorchGeo's ``NonGeoDataModule``, a
Lightning DataModule) exists when TorchGeo (which brings Lightning) is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from cropland.data.channels import PNG_RGB_CHANNELS, TIF_CHANNELS
from cropland.data.shards import CROISSANT, ShardReader, verify_checksums
from cropland.errors import DatasetError

try:
    from torchgeo.datasets import NonGeoDataset as _Base
except ImportError:  # TorchGeo is optional
    from torch.utils.data import Dataset as _Base  # type: ignore[assignment]  # the fallback base class


class CanadianCropland(_Base):
    """A release of ``cropland publish`` (the Canadian Cropland Dataset's format).

    Args:
        root: the release folder (or an fsspec URL, without ``download``).
        split: ``train``, ``val`` or ``test``.
        bands: channel names: spectral bands and indices (``B4``, ``NDVI``; releases built by
            cropland) or the PNG channels (``RGB_R``, ``RGB_G``, ``RGB_B``, ``NDVI``, ...).
        transforms: a function of the sample dict, applied last.
        download: fetch the release from the Hugging Face Hub (``repo_id``) when ``root``
            holds none.
        checksum: verify every file against ``SHA256SUMS`` first.
        repo_id: the Hub dataset repository to download from.
    """

    splits = {"train": "training", "val": "validation", "test": "test"}
    all_bands = TIF_CHANNELS
    rgb_bands = ("B4", "B3", "B2")
    rgb_max = 0.3  # reflectance shown as full brightness (the PNGs' default)

    def __init__(
        self,
        root: str | Path = "data",
        split: str = "train",
        bands: Sequence[str] = rgb_bands,
        transforms: Callable[[dict], dict] | None = None,
        download: bool = False,
        checksum: bool = False,
        repo_id: str | None = None,
    ) -> None:
        if split not in self.splits:
            raise DatasetError(f"unknown split {split!r}; use one of {', '.join(self.splits)}")
        self.root, self.split, self.bands = root, split, tuple(bands)
        self.transforms, self.download, self.checksum, self.repo_id = transforms, download, checksum, repo_id
        self._verify()
        images = "array" if set(self.bands) <= set(TIF_CHANNELS) else "png"
        self.reader = ShardReader(root, images=images)
        missing = [b for b in self.bands if b not in self.reader.channels]
        if missing:
            raise DatasetError(f"bands {missing} are not in {root} (it has {', '.join(self.reader.channels)})")
        self.classes = self.reader.classes
        self.indices = [i for i, r in enumerate(self.reader.records) if r.split == self.splits[split]]

    def _verify(self) -> None:
        """Existing release -> download -> a clear error."""
        if "://" in str(self.root) or (Path(self.root) / CROISSANT).exists():
            if self.checksum and "://" not in str(self.root):
                verify_checksums(self.root)
            return
        if not self.download:
            raise DatasetError(
                f"{self.root} holds no release (croissant.json); pass download=True with repo_id, "
                "or write one with `cropland publish`"
            )
        if not self.repo_id:
            raise DatasetError("download=True needs repo_id, the Hub dataset repository (USER/NAME)")
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id=self.repo_id, repo_type="dataset", local_dir=self.root)
        if self.checksum:
            verify_checksums(self.root)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.indices[index]
        image = self.reader.read(row, self.bands)
        label = self.reader.label_index(self.reader.records[row].name.label)
        sample = {"image": torch.from_numpy(np.ascontiguousarray(image)), "label": torch.tensor(label)}
        return self.transforms(sample) if self.transforms is not None else sample

    def plot(self, sample: dict, show_titles: bool = True, suptitle: str | None = None):
        """The sample's RGB (or its first band), its class and the prediction if it has one."""
        from matplotlib.figure import Figure

        image = sample["image"].numpy()
        rgb = [self.bands.index(b) for b in self.rgb_bands if b in self.bands]
        png = [self.bands.index(b) for b in PNG_RGB_CHANNELS if b in self.bands]
        if len(rgb) == 3:
            shown = np.clip(np.nan_to_num(image[rgb]) / self.rgb_max, 0, 1).transpose(1, 2, 0)
        elif len(png) == 3:
            shown = image[png].transpose(1, 2, 0)
        else:
            shown = np.nan_to_num(image[0])
        figure = Figure(figsize=(4, 4))
        axes = figure.add_subplot()
        axes.imshow(shown, cmap=None if shown.ndim == 3 else "viridis")
        axes.axis("off")
        if show_titles:
            title = f"label: {self.classes[int(sample['label'])]}"
            if "prediction" in sample:
                title += f"\nprediction: {self.classes[int(sample['prediction'])]}"
            axes.set_title(title)
        if suptitle is not None:
            figure.suptitle(suptitle)
        return figure


try:
    from torchgeo.datamodules import NonGeoDataModule
except ImportError:  # TorchGeo (and Lightning) are optional
    NonGeoDataModule = None  # type: ignore[assignment,misc]  # the class exists only with TorchGeo

if NonGeoDataModule is not None:

    class CanadianCroplandDataModule(NonGeoDataModule):
        """Lightning DataModule of :class:`CanadianCropland` (train, val and test splits).

        Images are passed as read (reflectance, or PNG values / 255): no rescaling.
        """

        mean = torch.tensor(0.0)
        std = torch.tensor(1.0)

        def __init__(self, batch_size: int = 64, num_workers: int = 0, **kwargs) -> None:
            super().__init__(CanadianCropland, batch_size, num_workers, **kwargs)
