"""Commands ``pack``, ``train``, ``evaluate``, ``benchmark``, ``predict`` (torch imported lazily)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer


def _models_option(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


def pack(
    dataset: Path = typer.Argument(..., help="Dataset folder (GeoTIFF build or PNG tree)."),
    out: Path = typer.Argument(..., help="Folder for the packed arrays and manifest.json."),
    channels: str = typer.Option("all", help="Channels to pack: all, bands, RGB, NDVI, ... (PNG: image types)."),
    source: str = typer.Option("auto", help="auto, tif or png."),
    size: int = typer.Option(None, help="Centre-crop to this size (e.g. 64 for 65 x 65 PNGs)."),
) -> None:
    """Pack a dataset into per-split arrays with a checksummed manifest (fast training, no GDAL)."""
    from cropland.data.pack import pack as pack_dataset

    typer.echo(pack_dataset(dataset, out, channels, source, size))


def train(
    dataset: Path = typer.Option(None, help="Dataset folder: packed, GeoTIFF build or PNG tree."),
    out: Path = typer.Option(None, help="Run folder [runs/run]."),
    model: str = typer.Option(
        None, help="resnet50 (default), densenet121, efficientnet_b0, small_cnn, lrcn, cnn3d, tempcnn, "
        "temporal_transformer."
    ),
    channels: str = typer.Option(None, help="RGB (default), an index, bands, all, or a comma list."),
    source: str = typer.Option(None, help="auto (default), packed, tif or png."),
    epochs: int = typer.Option(None, help="[20]"),
    batch_size: int = typer.Option(None, help="[64]"),
    lr: float = typer.Option(None, help="AdamW learning rate [0.001]."),
    seed: int = typer.Option(None, help="[0]"),
    device: str = typer.Option(None, help="auto (default), cpu, cuda, cuda:1 ..."),
    temporal_mode: str = typer.Option(None, help="auto (default), triplet or series (temporal models)."),
    size: int = typer.Option(None, help="Centre-crop images to this size."),
    resize: int = typer.Option(None, help="Average images down to this size."),
    patience: int = typer.Option(None, help="Early stopping patience (epochs)."),
    time_budget: float = typer.Option(None, help="Stop once this many seconds of training are spent."),
    pretrained: Path = typer.Option(None, help="Local ImageNet state_dict (torchvision backbones)."),
    loading: str = typer.Option(None, help="auto (default: resident when the splits fit), resident or stream."),
    config: Path = typer.Option(None, help="YAML of TrainConfig fields; options given here win."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last.pt."),
) -> None:
    """Train one model; write config.yaml, checkpoints, history, metrics and predictions."""
    import yaml

    from cropland.train.config import TrainConfig
    from cropland.train.loop import train as train_model

    fields = yaml.safe_load(config.read_text("utf-8")) if config else {}
    given = {
        "dataset": dataset, "out": out, "model": model, "channels": channels, "source": source, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "seed": seed, "device": device, "temporal_mode": temporal_mode,
        "size": size, "resize": resize, "patience": patience, "time_budget_s": time_budget, "pretrained": pretrained,
        "loading": loading,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    if "dataset" not in fields:
        raise typer.BadParameter("give --dataset (or dataset: in --config)")
    cfg = TrainConfig(**fields)
    metrics = train_model(cfg, resume=resume)
    _echo_metrics(metrics["test"], f"{cfg.model} test")


def evaluate(
    run: Path = typer.Argument(..., help="Run folder of `cropland train`."),
    split: str = typer.Option("test", help="training, validation or test."),
    dataset: Path = typer.Option(None, help="Another dataset with the same classes."),
    device: str = typer.Option("auto"),
) -> None:
    """Evaluate a run's best checkpoint: every item of the split predicted once."""
    from cropland.train.predict import evaluate_run

    _echo_metrics(evaluate_run(run, split, dataset, device), f"{run} {split}")


def benchmark(
    dataset: Path = typer.Option(..., help="Dataset folder (packed is fastest)."),
    out: Path = typer.Option(Path("benchmark"), help="Report folder."),
    models: str = typer.Option("resnet50,densenet121,efficientnet_b0,lrcn,cnn3d,tempcnn,temporal_transformer", help="Comma-separated model names."),
    channels: list[str] = typer.Option(["RGB"], help="Channel selection; repeat for several image types."),
    seeds: str = typer.Option(None, help="Comma-separated seeds (default: 0 on CPU, 0,1,2 on CUDA)."),
    profile: str = typer.Option("auto", help="auto, cpu (32 px, 1 seed) or cuda (full size, 3 seeds)."),
    device: str = typer.Option("auto"),
    epochs: int = typer.Option(None, help="Override the profile's epochs."),
    time_budget: float = typer.Option(None, help="Override the profile's time budget per run (s)."),
) -> None:
    """Train models x channel selections x seeds; write report.md with tables and figures."""
    from cropland.train.benchmark import run_benchmark

    overrides = {k: v for k, v in {"epochs": epochs, "time_budget_s": time_budget}.items() if v is not None}
    report = run_benchmark(
        dataset, out, _models_option(models), channels,
        [int(s) for s in seeds.split(",")] if seeds else None, profile, device,
        command="cropland " + " ".join(shlex.quote(a) for a in sys.argv[1:]), **overrides,
    )
    typer.echo(report)


def predict(
    checkpoint: Path = typer.Argument(..., help="Run folder or best.pt."),
    inputs: list[Path] = typer.Argument(None, help="Sample files or folders (.tif or .png)."),
    dataset: Path = typer.Option(None, help="Dataset folder, with --point and --year."),
    config: Path = typer.Option(None, help="Build configuration whose source and points give --point in --year."),
    point: int = typer.Option(None),
    year: int = typer.Option(None),
    device: str = typer.Option("auto"),
) -> None:
    """Predict files, folders, or one point and year (of a dataset, or through a source); print JSON lines."""
    from cropland.train.predict import predict_files, predict_point, predict_source

    if (dataset is not None or config is not None) and (point is None or year is None):
        raise typer.BadParameter("--dataset and --config need --point and --year")
    if config is not None:
        results = predict_source(checkpoint, config, point, year, device)
    elif dataset is not None:
        results = predict_point(checkpoint, dataset, point, year, device)
    elif inputs:
        results = predict_files(checkpoint, inputs, device)
    else:
        raise typer.BadParameter("give sample files/folders, or --dataset with --point and --year")
    for r in results:
        typer.echo(json.dumps(r))


def _echo_metrics(m: dict, title: str) -> None:
    typer.echo(
        f"{title}: accuracy {m['accuracy']:.3f}, precision {m['precision']:.3f}, recall {m['recall']:.3f}, "
        f"F1 {m['f1']:.3f} (macro, {m['n']} items)"
    )


def register(app: typer.Typer) -> None:
    """Add the commands to the main ``cropland`` app."""
    for command in (pack, train, evaluate, benchmark, predict):
        app.command()(command)
