"""The configuration of one training run; saved, resolved, as ``config.yaml`` in its folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MONTHS = [6, 7, 8, 9, 10]


class TrainConfig(BaseModel):
    """Everything that decides a training run (relative paths resolve against the working folder)."""

    model_config = ConfigDict(extra="forbid")

    dataset: Path = Field(description="Dataset folder: packed (cropland pack), GeoTIFF build or PNG tree.")
    out: Path = Field(Path("runs/run"), description="Run folder: config, checkpoints, history, metrics.")
    source: Literal["auto", "packed", "tif", "png"] = Field("auto", description="Which reader to use.")
    channels: str = Field("RGB", description="Channel selection: RGB, an index, bands, all, or a list.")
    model: str = Field("resnet50", description="Registered model name (cropland.models.list_models()).")
    temporal_mode: Literal["auto", "triplet", "series"] = Field(
        "auto", description="Temporal items: paper triplets or the full series (auto: lrcn/cnn3d triplet)."
    )
    months: list[int] = Field(default_factory=lambda: list(DEFAULT_MONTHS), description="Months used.")
    size: int | None = Field(None, description="Centre-crop images to this size (65 -> 64); None keeps them.")
    resize: int | None = Field(None, description="Average images down to this size once at load time.")
    epochs: int = Field(20, ge=1, description="Training epochs (the most: see time_budget_s, patience).")
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(512, ge=1)
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (cosine decay over the epochs).")
    weight_decay: float = Field(1e-4, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: bool = Field(True, description="Random flips / rot90 on the device.")
    patience: int | None = Field(None, description="Stop after this many epochs without a better validation accuracy.")
    time_budget_s: float | None = Field(None, description="Stop after the epoch that passes this many seconds.")
    seed: int = 0
    device: str = Field("auto", description="auto (cuda when present), cpu, cuda, cuda:1 ...")
    amp: bool = Field(True, description="bfloat16 autocast on CUDA (ignored on CPU).")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA (static models).")
    pretrained: Path | None = Field(None, description="Local ImageNet state_dict for torchvision backbones.")
    threads: int | None = Field(None, description="CPU threads for torch (None: torch's default).")
    loading: Literal["auto", "resident", "stream"] = Field(
        "auto", description="resident: the splits on the device (fastest); stream: batches read by DataLoader "
        "workers (memory for a few batches); auto: resident when they fit device_memory_mb."
    )
    device_memory_mb: float | None = Field(
        None, gt=0, description="Device memory the resident splits may take (MiB); None: half the free memory."
    )
    workers: int = Field(2, ge=0, description="DataLoader worker processes of the streaming path.")
