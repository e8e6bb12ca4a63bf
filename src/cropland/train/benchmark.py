"""``cropland benchmark``: models x channel selections x seeds, and a Markdown report.

Every run trains on the dataset's training split, keeps the epoch with the best validation
accuracy and predicts every test item once. The report gives mean +- standard deviation over
seeds of accuracy and macro precision, recall and F1, next to the paper's table
(``REFERENCE.md`` section 7), with confusion matrices and learning curves as PNG.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from cropland.data.readers import built_from
from cropland.errors import CroplandError
from cropland.io import write_text_atomic
from cropland.models import get_entry, is_temporal
from cropland.train.config import DEFAULT_MODELS, TrainConfig

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")

#: The paper's results (2019 data, RGB; ``REFERENCE.md`` section 7; ~ = read off a bar chart).
PAPER_TABLE: tuple[tuple[str, str, str, str, str], ...] = (
    ("LRCN-64", "0.610 +- 0.017", "0.637 +- 0.015", "0.617 +- 0.013", "0.774 +- 0.014"),
    ("3D-CNN", "~0.61", "~0.62", "~0.61", "~0.773"),
    ("ResNet-50", "~0.59", "~0.55", "~0.55", "~0.667"),
    ("EfficientNet-B0", "~0.43", "~0.43", "~0.41", "~0.53"),
    ("DenseNet-121", "~0.33", "~0.33", "~0.27", "~0.40"),
)


@dataclass
class Profile:
    """Training settings shared by every run of a benchmark."""

    resize: int | None
    epochs: int
    batch_size: int
    temporal_batch_size: int
    lr: float
    patience: int | None
    time_budget_s: float | None
    seeds: list[int] = field(default_factory=lambda: [0])


PROFILES: dict[str, Profile] = {
    # CPU: images averaged to 32 x 32, one seed; the demo's grid takes ~25 min on 2 cores
    # (`--time-budget 30` makes it a few-minute smoke run; the report flags short runs).
    "cpu": Profile(resize=32, epochs=12, batch_size=32, temporal_batch_size=8, lr=2e-3, patience=None,
                   time_budget_s=None, seeds=[0]),
    # One GPU: full resolution, longer training, three seeds.
    "cuda": Profile(resize=None, epochs=40, batch_size=256, temporal_batch_size=64, lr=2e-3, patience=10,
                    time_budget_s=None, seeds=[0, 1, 2]),
}


def run_benchmark(
    dataset: str | Path,
    out: str | Path,
    models: Sequence[str] = DEFAULT_MODELS,
    channel_sets: Sequence[str] = ("RGB",),
    seeds: Sequence[int] | None = None,
    profile: str = "auto",
    device: str = "auto",
    command: str = "",
    **overrides,
) -> Path:
    """Train every combination, then write ``out/report.md``; return its path."""
    from cropland.train.loop import resolve_device, train

    device_name = str(resolve_device(device))
    base = PROFILES[profile if profile != "auto" else ("cuda" if device_name.startswith("cuda") else "cpu")]
    fields = {**vars(base), **{k: v for k, v in overrides.items() if k in vars(base)}}
    if seeds is not None:
        fields["seeds"] = list(seeds)
    chosen = Profile(**fields)
    extra = {k: v for k, v in overrides.items() if k not in fields}  # any other TrainConfig field
    for name in models:
        get_entry(name)
    out = Path(out)
    results = []
    for channels in channel_sets:
        for name in models:
            for seed in chosen.seeds:
                run_dir = out / "runs" / f"{name}_{channels.replace(',', '+')}_seed{seed}"
                cfg = TrainConfig(
                    dataset=Path(dataset), out=run_dir, channels=channels, model=name, seed=seed, device=device_name,
                    resize=chosen.resize, epochs=chosen.epochs, lr=chosen.lr, patience=chosen.patience,
                    batch_size=chosen.temporal_batch_size if is_temporal(name) else chosen.batch_size,
                    time_budget_s=chosen.time_budget_s, **extra,
                )
                log.info("benchmark: %s on %s, seed %d", name, channels, seed)
                metrics = train(cfg, resume=(run_dir / "last.pt").exists())
                metrics["history"] = json.loads((run_dir / "history.json").read_text("utf-8"))
                results.append(metrics)
    if not results:
        raise CroplandError("nothing to benchmark: give at least one model, channel selection and seed")
    write_text_atomic(out / "results.json", json.dumps(results, indent=1))
    return write_report(out, results, Path(dataset), chosen, device_name, command)


def summarise(results: list[dict]) -> list[dict]:
    """Mean and standard deviation (over seeds, ddof 1) per model and channel selection."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["model"], r["channels"]), []).append(r)
    rows = []
    for (model, channels), runs in groups.items():
        row = {"model": model, "channels": channels, "seeds": len(runs), "items": runs[0]["items"]["test"]}
        for m in METRICS:
            values = np.array([r["test"][m] for r in runs])
            row[m] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None)
        seen = np.mean(
            [sum(h.get("items", r["items"]["training"]) for h in r["history"]) / r["items"]["training"] for r in runs]
        )
        row["trained_epochs"] = float(seen)
        row["epochs"] = f"{seen:.1f} ({runs[0]['stopped_by']})"
        rows.append(row)
    return rows


def _fmt(value: tuple[float, float | None]) -> str:
    mean, std = value
    return f"{mean:.3f} +- {std:.3f}" if std is not None else f"{mean:.3f}"


def is_synthetic(root: Path) -> str:
    """``yes`` / ``no`` / ``unknown``: whether the dataset's pixels are simulated."""
    root = built_from(root)  # a packed dataset: the folder it was packed from
    for name in ("config.yaml", "splits.json", "dataset_card.md"):
        path = root / name
        if path.exists():
            text = path.read_text("utf-8", errors="replace").lower()
            if "simulator" in text or '"synthetic": true' in text or "synthetic: yes" in text:
                return "yes"
    return "unknown"


def write_report(out: Path, results: list[dict], dataset: Path, profile: Profile, device: str, command: str) -> Path:
    """``report.md`` with the table, the paper's table, confusion matrices and learning curves."""
    from cropland.train.plots import plot_confusion, plot_learning_curves

    rows = summarise(results)
    figures = []
    for row in rows:
        runs = [r for r in results if r["model"] == row["model"] and r["channels"] == row["channels"]]
        confusion = np.sum([np.array(r["test"]["confusion"]) for r in runs], axis=0)
        name = f"confusion_{row['model']}_{row['channels'].replace(',', '+')}.png"
        plot_confusion(confusion, runs[0]["classes"], f"{row['model']} ({row['channels']})", out / name)
        figures.append(name)
    curves = []
    for channels in dict.fromkeys(r["channels"] for r in results):
        name = f"learning_curves_{channels.replace(',', '+')}.png"
        plot_learning_curves([r for r in results if r["channels"] == channels], out / name)
        curves.append(name)
    text = _report_text(rows, results, dataset, profile, device, command, figures, curves)
    return write_text_atomic(out / "report.md", text)


def _report_text(rows, results, dataset, profile, device, command, figures, curves) -> str:
    import torch

    chance = 1 / len(results[0]["classes"])
    lines = [
        "# Benchmark report",
        "",
        f"- Date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        (
            f"- Dataset: `{dataset}`; synthetic pixels: **{is_synthetic(dataset)}**; "
            f"{len(results[0]['classes'])} classes (chance accuracy {chance:.3f})"
        ),
        f"- Machine: {platform.node()}, {platform.processor() or platform.machine()}, device `{device}`"
        + (
            f" ({torch.cuda.get_device_name(0)})"
            if device.startswith("cuda")
            else f", {torch.get_num_threads()} threads"
        ),
        f"- Command: `{command or 'run_benchmark(...)'}`",
        f"- Profile: images {'averaged to ' + str(profile.resize) + ' px' if profile.resize else 'at full size'}, "
        f"up to {profile.epochs} epochs, batch {profile.batch_size} (temporal {profile.temporal_batch_size}), "
        f"AdamW lr {profile.lr} (warm-up, cosine)"
        + (f", time budget {profile.time_budget_s:.0f} s per run" if profile.time_budget_s else "")
        + (f", early stopping after {profile.patience} epochs" if profile.patience else ""),
        "",
        "## Results (test split)",
        "",
        (
            "Static models classify one image; `lrcn` and `cnn3d` classify runs of three consecutive "
            "months (the paper's triplets); `tempcnn` and `temporal_transformer` classify the June-October "
            "series of a point-year with missing months masked. Each model is scored on its own items "
            "(images, triplets or series). Mean +- standard deviation over seeds; macro averages."
        ),
        "",
        "| model | kind | channels | seeds | test items | accuracy | precision | recall | F1 | epochs trained (stop) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["channels"], -r["accuracy"][0])):
        kind = "temporal" if is_temporal(row["model"]) else "static"
        lines.append(
            f"| {row['model']} | {kind} | {row['channels']} | {row['seeds']} | {row['items']} | "
            + " | ".join(_fmt(row[m]) for m in METRICS) + f" | {row['epochs']} |"
        )
    short = [f"`{r['model']}` ({r['channels']})" for r in rows if r["trained_epochs"] < 2]
    if short:
        lines += ["", (f"**Under-trained here** (less than two passes over the training items within the time "
                  f"budget): {', '.join(short)}. Their figures say what this machine managed, not what the "
                  "model can do; run with the `cuda` profile or a larger `--time-budget`.")]
    lines += [
        "",
        "## The paper's table (2019 data, RGB; REFERENCE.md section 7)",
        "",
        "| model | precision | recall | F1 | accuracy |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in PAPER_TABLE),
        "",
        ("The paper's numbers come from real Sentinel-2 data, 2019 only, with the original code's "
        "defects (per-class/per-year splits that let points leak across years, mismatched test "
        "predictions, a sigmoid 3D-CNN). They are not comparable with runs on other data. Here, "
        "splits come from the dataset's `splits.json` (grouped by point, every year), and every "
        "test item is predicted exactly once and matched to its own label."),
        "",
        "## Figures",
        "",
        *(f"![learning curves]({c})" for c in curves),
        "",
        *(f"![confusion]({f})" for f in figures),
        "",
    ]
    return "\n".join(lines)
