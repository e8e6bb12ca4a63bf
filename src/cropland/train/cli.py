"""Commands ``pack``, ``train``, ``evaluate``, ``benchmark``, ``predict`` (torch imported lazily).

Options and ``--config`` files go through the models of :mod:`cropland.train.config`, as a
build's configuration does (one line naming each wrong field); help texts and defaults come from
their fields.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from cropland.configfile import read_mapping, validate
from cropland.train.config import (
    BenchmarkOptions,
    EvaluateOptions,
    PredictOptions,
    TrainConfig,
    option_help,
)


def _given(**options: object) -> dict:
    """The options given on the command line (typer leaves the others None)."""
    return {k: v for k, v in options.items() if v is not None}


def _list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def pack(
    dataset: Path = typer.Argument(..., help="Dataset folder (GeoTIFF build or PNG tree)."),
    out: Path = typer.Argument(..., help="Folder for the packed arrays and manifest.json."),
    channels: str = typer.Option("all", help="Channels to pack: all, bands, RGB, NDVI, ... (PNG: image types)."),
    source: str = typer.Option("auto", help="auto, tif or png."),
    size: int = typer.Option(None, help="Centre-crop to this size (e.g. 64 for 65 x 65 PNGs)."),
    workers: int = typer.Option(None, help="Processes reading the samples (default: the cores, at most 8; "
                                "one for fewer than 2,000 samples)."),
) -> None:
    """Pack a dataset into per-split arrays with a checksummed manifest (fast training, no GDAL)."""
    from cropland.data.pack import pack as pack_dataset

    typer.echo(pack_dataset(dataset, out, channels, source, size, workers))


def train(
    dataset: Path = typer.Option(None, help=option_help(TrainConfig, "dataset")),
    out: Path = typer.Option(None, help=option_help(TrainConfig, "out")),
    model: str = typer.Option(None, help=option_help(TrainConfig, "model")),
    channels: str = typer.Option(None, help=option_help(TrainConfig, "channels")),
    source: str = typer.Option(None, help=option_help(TrainConfig, "source")),
    epochs: int = typer.Option(None, help=option_help(TrainConfig, "epochs")),
    batch_size: int = typer.Option(None, help=option_help(TrainConfig, "batch_size")),
    lr: float = typer.Option(None, help=option_help(TrainConfig, "lr")),
    seed: int = typer.Option(None, help=option_help(TrainConfig, "seed")),
    device: str = typer.Option(None, help=option_help(TrainConfig, "device")),
    temporal_mode: str = typer.Option(None, help=option_help(TrainConfig, "temporal_mode")),
    size: int = typer.Option(None, help=option_help(TrainConfig, "size")),
    resize: int = typer.Option(None, help=option_help(TrainConfig, "resize")),
    patience: int = typer.Option(None, help=option_help(TrainConfig, "patience")),
    time_budget: float = typer.Option(None, help=option_help(TrainConfig, "time_budget_s")),
    pretrained: Path = typer.Option(None, help=option_help(TrainConfig, "pretrained")),
    loading: str = typer.Option(None, help=option_help(TrainConfig, "loading")),
    config: Path = typer.Option(None, help="YAML of training settings (any field of "
                                "cropland.train.config.TrainConfig); options given here win."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last.pt."),
) -> None:
    """Train one model; write config.yaml, checkpoints, history, metrics and predictions."""
    from cropland.train.loop import train as train_model

    fields = read_mapping(config, "`cropland train --help`") if config else {}
    fields.update(_given(
        dataset=dataset, out=out, model=model, channels=channels, source=source, epochs=epochs,
        batch_size=batch_size, lr=lr, seed=seed, device=device, temporal_mode=temporal_mode,
        size=size, resize=resize, patience=patience, time_budget_s=time_budget, pretrained=pretrained,
        loading=loading,
    ))
    cfg = validate(TrainConfig, fields, str(config) if config else "cropland train")
    metrics = train_model(cfg, resume=resume)
    _echo_metrics(metrics["test"], f"{cfg.model} test")


def evaluate(
    run: Path = typer.Argument(..., help="Run folder of `cropland train`."),
    split: str = typer.Option(None, help=option_help(EvaluateOptions, "split")),
    dataset: Path = typer.Option(None, help=option_help(EvaluateOptions, "dataset")),
    device: str = typer.Option(None, help=option_help(EvaluateOptions, "device")),
) -> None:
    """Evaluate a run's best checkpoint: every item of the split predicted once."""
    from cropland.train.predict import evaluate_run

    o = validate(EvaluateOptions, _given(split=split, dataset=dataset, device=device),
                 "cropland evaluate")
    _echo_metrics(evaluate_run(run, o.split, o.dataset, o.device), f"{run} {o.split}")


def benchmark(
    dataset: Path = typer.Option(None, help=option_help(BenchmarkOptions, "dataset")),
    out: Path = typer.Option(None, help=option_help(BenchmarkOptions, "out")),
    models: str = typer.Option(None, help=option_help(BenchmarkOptions, "models")),
    channels: list[str] = typer.Option(None, help=option_help(BenchmarkOptions, "channels")),
    seeds: str = typer.Option(None, help=option_help(BenchmarkOptions, "seeds")),
    profile: str = typer.Option(None, help=option_help(BenchmarkOptions, "profile")),
    device: str = typer.Option(None, help=option_help(BenchmarkOptions, "device")),
    epochs: int = typer.Option(None, help=option_help(BenchmarkOptions, "epochs")),
    time_budget: float = typer.Option(None, help=option_help(BenchmarkOptions, "time_budget_s")),
) -> None:
    """Train models x channel selections x seeds; write report.md with tables and figures."""
    from cropland.train.benchmark import run_benchmark

    o = validate(BenchmarkOptions, _given(
        dataset=dataset, out=out, models=_list(models), channels=channels or None, seeds=_list(seeds),
        profile=profile, device=device, epochs=epochs, time_budget_s=time_budget,
    ), "cropland benchmark")
    overrides = _given(epochs=o.epochs, time_budget_s=o.time_budget_s)
    report = run_benchmark(
        o.dataset, o.out, o.models, o.channels, o.seeds, o.profile, o.device,
        command="cropland " + " ".join(shlex.quote(a) for a in sys.argv[1:]), **overrides,
    )
    typer.echo(report)


def predict(
    checkpoint: Path = typer.Argument(..., help="Run folder or best.pt."),
    inputs: list[Path] = typer.Argument(None, help="Sample files or folders (.tif or .png)."),
    dataset: Path = typer.Option(None, help="Dataset folder, with --point and --year."),
    config: Path = typer.Option(None, help="Build configuration whose source and points give --point in --year."),
    point: int = typer.Option(None, help=option_help(PredictOptions, "point")),
    year: int = typer.Option(None, help=option_help(PredictOptions, "year")),
    device: str = typer.Option(None, help=option_help(PredictOptions, "device")),
) -> None:
    """Predict files, folders, or one point and year (of a dataset, or through a source); print JSON lines."""
    from cropland.train.predict import predict_files, predict_point, predict_source

    o = validate(PredictOptions, _given(point=point, year=year, device=device), "cropland predict")
    if (dataset is not None or config is not None) and (o.point is None or o.year is None):
        raise typer.BadParameter("--dataset and --config need --point and --year")
    if config is not None:
        results = predict_source(checkpoint, config, o.point, o.year, o.device)
    elif dataset is not None:
        results = predict_point(checkpoint, dataset, o.point, o.year, o.device)
    elif inputs:
        results = predict_files(checkpoint, inputs, o.device)
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
