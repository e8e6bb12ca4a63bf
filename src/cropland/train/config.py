"""The settings of training commands, validated as ``cropland build``'s are (``configfile``).

:class:`TrainConfig` is one training run (saved, resolved, as ``config.yaml`` in its folder);
:class:`EvaluateOptions`, :class:`BenchmarkOptions` and :class:`PredictOptions` are the other
commands' options. The command line takes its help texts and defaults from these fields.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cropland.core.naming import MAX_POINT_ID

DEFAULT_MONTHS = [6, 7, 8, 9, 10]
#: The models of the paper's comparison, and the two temporal models added here.
DEFAULT_MODELS: tuple[str, ...] = (
    "resnet50", "densenet121", "efficientnet_b0", "lrcn", "cnn3d", "tempcnn", "temporal_transformer",
)



def _device(name: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name):
        raise ValueError(f"use auto, cpu, mps, cuda or cuda:N, not {name!r}")
    return name


Device = Annotated[str, AfterValidator(_device),
                   Field(description="auto (cuda when present), cpu, mps, cuda, cuda:1 ...")]
Seed = Annotated[int, Field(ge=0, lt=2**32, description="Random seed (0 to 2**32 - 1).")]
Month = Annotated[int, Field(ge=1, le=12)]
Pixels = Annotated[int, Field(ge=1, le=1024)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TrainConfig(_Settings):
    """Everything that decides a training run (relative paths resolve against the working folder)."""

    dataset: Path = Field(description="Dataset folder: packed (cropland pack), GeoTIFF build or PNG tree.")
    out: Path = Field(Path("runs/run"), description="Run folder: config, checkpoints, history, metrics.")
    source: Literal["auto", "packed", "tif", "png"] = Field("auto", description="Which reader to use.")
    channels: str = Field("RGB", description="Channel selection: RGB, an index, bands, all, or a list.")
    model: str = Field("resnet50", description="Registered model name (cropland.models.list_models()).")
    temporal_mode: Literal["auto", "triplet", "series"] = Field(
        "auto", description="Temporal items: paper triplets or the full series (auto: lrcn/cnn3d triplet)."
    )
    months: list[Month] = Field(default_factory=lambda: list(DEFAULT_MONTHS), min_length=1,
                                description="Months used (1-12).")
    size: Pixels | None = Field(None, description="Centre-crop images to this size (65 -> 64); None keeps them.")
    resize: Pixels | None = Field(None, description="Average images down to this size once at load time.")
    epochs: int = Field(20, ge=1, description="Training epochs (the most: see time_budget_s, patience).")
    batch_size: int = Field(64, ge=1, description="Training batch size.")
    eval_batch_size: int = Field(512, ge=1, description="Batch size of evaluation.")
    lr: float = Field(1e-3, gt=0, le=10, description="AdamW learning rate (cosine decay over the epochs).")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the loss.")
    augment: bool = Field(True, description="Random flips / rot90 on the device.")
    patience: int | None = Field(None, ge=1, description="Stop after this many epochs without a better "
                                 "validation accuracy.")
    time_budget_s: float | None = Field(None, gt=0, description="Stop after the epoch that passes this many seconds.")
    seed: Seed = 0
    device: Device = "auto"
    amp: bool = Field(True, description="bfloat16 autocast on CUDA (ignored on CPU).")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA (static models).")
    pretrained: Path | None = Field(None, description="Local ImageNet state_dict for torchvision backbones.")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (None: torch's default).")
    loading: Literal["auto", "resident", "stream"] = Field(
        "auto", description="resident: the splits on the device (fastest); stream: batches read by DataLoader "
        "workers (memory for a few batches); auto: resident when they fit device_memory_mb."
    )
    device_memory_mb: float | None = Field(
        None, gt=0, description="Device memory the resident splits may take (MiB); None: half the free memory."
    )
    workers: int = Field(2, ge=0, description="DataLoader worker processes of the streaming path.")


class EvaluateOptions(_Settings):
    """``cropland evaluate``: which split of which data, on which device."""

    split: Literal["training", "validation", "test"] = Field("test", description="The split to evaluate.")
    dataset: Path | None = Field(None, description="Another dataset with the same classes "
                                 "(default: the run's own).")
    device: Device = "auto"


class BenchmarkOptions(_Settings):
    """``cropland benchmark``: the grid of runs and what overrides its profile."""

    dataset: Path = Field(description="Dataset folder (packed is fastest).")
    out: Path = Field(Path("benchmark"), description="Report folder.")
    models: list[str] = Field(list(DEFAULT_MODELS), min_length=1,
                              description="Model names, comma-separated.")
    channels: list[str] = Field(["RGB"], min_length=1, description="Channel selections, one per "
                                "image type (repeat the option).")
    seeds: list[Seed] | None = Field(None, min_length=1, description="Seeds, comma-separated "
                                     "(default: 0 on CPU, 0,1,2 on CUDA).")
    profile: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="cpu (32 px, 1 seed), cuda (full size, 3 seeds), or auto (by device).")
    device: Device = "auto"
    epochs: int | None = Field(None, ge=1, description="Epochs per run (overrides the profile's).")
    time_budget_s: float | None = Field(None, gt=0, description="Seconds per run (overrides the "
                                        "profile's).")


class PredictOptions(_Settings):
    """``cropland predict``: one point and year, and the device."""

    point: int | None = Field(None, ge=0, le=MAX_POINT_ID, description="Point id (with --year).")
    year: int | None = Field(None, ge=2015, le=2100, description="Crop year (with --point).")
    device: Device = "auto"


def option_help(model: type[BaseModel], name: str) -> str:
    """The help text of a command-line option: the field's description and its default."""
    field = model.model_fields[name]
    default: Any = field.get_default(call_default_factory=True)
    if isinstance(default, list | tuple):
        default = ",".join(map(str, default))
    shown = "" if default is None or field.is_required() else f" (default: {default})"
    return (field.description or "") + shown
