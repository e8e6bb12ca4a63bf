"""Train and evaluate one model on one dataset: the library behind ``cropland train``.

A run folder holds ``config.yaml`` (the resolved configuration), ``last.pt`` (to resume),
``best.pt`` (best validation accuracy; used for the test), ``history.json`` (one row per
epoch), ``metrics.json`` (validation and test) and ``predictions.csv`` (one row per test
item: its name, label and prediction).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cropland.data.datasets import StaticDataset, TemporalDataset, TemporalMode, compute_stats
from cropland.data.readers import Reader, open_reader, render_settings, selected_channels
from cropland.data.stream import StreamSplit
from cropland.data.tensors import Batch, Split, free_memory, load_tensors, resident_bytes
from cropland.errors import CroplandError
from cropland.io import atomic_path, write_text_atomic
from cropland.models import create_model, is_temporal
from cropland.train.checkpoint import load_checkpoint, save_checkpoint
from cropland.train.metrics import classification_metrics, confusion_matrix
from cropland.train.spec import RunSpec

if TYPE_CHECKING:  # no pydantic at run time: a GPU machine without it trains from this module
    from cropland.train.config import TrainConfig

log = logging.getLogger(__name__)
PAPER_TRIPLET_MODELS = ("lrcn", "cnn3d")


@dataclass
class PreparedData:
    """The three splits, ready to give batches, and the run's specification."""

    train: Split
    validation: Split
    test: Split
    spec: RunSpec
    loading: str  # "resident" or "stream"


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CroplandError(f"device {name}: this machine has {torch.cuda.device_count()} CUDA "
                            "devices; use --device auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CroplandError(f"device {name}: MPS is not available here; use --device auto or cpu")
    return device


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill ``auto`` fields (device, temporal mode) so the saved config says what ran."""
    return cfg.model_copy(update={"device": str(resolve_device(cfg.device)), "temporal_mode": _temporal_mode(cfg)})


def _temporal_mode(cfg: TrainConfig) -> TemporalMode:
    """``cfg.temporal_mode``, ``auto`` resolved: the paper's triplet models take triplets, others series."""
    if cfg.temporal_mode == "auto":
        return "triplet" if cfg.model in PAPER_TRIPLET_MODELS else "series"
    return cfg.temporal_mode


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> dict:
    """Python, NumPy and torch (CPU and CUDA) random states: dropout draws from them.

    Plain values and tensors only, so a checkpoint holding them loads with ``weights_only``.
    """
    # numpy's stubs type the call as legacy=False's dict; the default is legacy=True, this tuple
    kind, key, pos, has_gauss, gauss = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    numpy_state = (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss)
    states = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` saved."""
    random.setstate(states["python"])
    kind, key, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def make_dataset(reader: Reader, split: str, spec: RunSpec) -> StaticDataset | TemporalDataset:
    """The static or temporal dataset a run's spec describes (unnormalised: batches are normalised on the device)."""
    kwargs: dict[str, Any] = {"months": spec.months, "size": spec.size, "classes": spec.classes}
    if spec.temporal:
        assert spec.temporal_mode is not None  # set for every temporal model
        return TemporalDataset(reader, split, spec.channels, mode=spec.temporal_mode, **kwargs)
    return StaticDataset(reader, split, spec.channels, **kwargs)


def resolve_spec(cfg: TrainConfig, reader: Reader) -> RunSpec:
    """The run's specification: the config's settings, the dataset's classes, the training statistics."""
    temporal = is_temporal(cfg.model)
    channels = selected_channels(reader, cfg.channels)
    size = cfg.size
    if size is None:  # record what the model sees, so predict crops alike
        size = int(reader.read(0, channels[:1]).shape[-1])
    spec = RunSpec(
        model=cfg.model, channels=channels, classes=tuple(reader.classes), months=tuple(cfg.months),
        temporal=temporal, temporal_mode=_temporal_mode(cfg) if temporal else None, size=size, resize=cfg.resize,
        normalization={}, source=type(reader).__name__,
        render=render_settings(cfg.dataset),  # predict renders GeoTIFFs as these PNGs were
    )
    normalization = compute_stats(make_dataset(reader, "training", spec))
    return replace(spec, normalization=normalization.to_dict())


def load_split(dataset: StaticDataset | TemporalDataset, spec: RunSpec, device: torch.device, loading: str,
               workers: int = 2) -> Split:
    """One split, resident on ``device`` or streamed to it."""
    if loading == "stream":
        return StreamSplit(dataset, spec.preprocessing, device, workers)
    return load_tensors(dataset, spec.preprocessing, device)


def choose_loading(cfg: TrainConfig, datasets: list, spec: RunSpec, device: torch.device) -> str:
    """``cfg.loading``, or with ``auto`` resident when the splits fit the memory allowed, else stream."""
    if cfg.loading != "auto":
        return cfg.loading
    need = sum(resident_bytes(ds, spec.preprocessing) for ds in datasets)
    if cfg.device_memory_mb is not None:
        allowed = cfg.device_memory_mb * 2**20
    else:  # half the free memory: the rest is for the model, its activations and the optimiser
        allowed = free_memory(device) / 2
    loading = "resident" if need <= allowed else "stream"
    log.info("data: the splits take %.1f MiB, %.1f MiB allowed on %s: %s", need / 2**20, allowed / 2**20,
             device, "resident" if loading == "resident" else "streamed in batches")
    return loading


def prepare_data(cfg: TrainConfig, device: torch.device) -> PreparedData:
    """Read the three splits (the dataset's own split file): resident on ``device``, or streamed."""
    reader = open_reader(cfg.dataset, cfg.channels, cfg.source)
    spec = resolve_spec(cfg, reader)
    datasets = {split: make_dataset(reader, split, spec) for split in ("training", "validation", "test")}
    loading = choose_loading(cfg, list(datasets.values()), spec, device)
    splits = {name: load_split(ds, spec, device, loading, cfg.workers) for name, ds in datasets.items()}
    log.info(
        "data: %s items training, %s validation, %s test; %d channels; classes %s",
        *(len(s) for s in splits.values()), len(spec.channels), ", ".join(spec.classes),
    )
    return PreparedData(splits["training"], splits["validation"], splits["test"], spec, loading)


def build_model(spec: RunSpec, pretrained: Path | None = None) -> nn.Module:
    """The model a run's spec describes (random weights unless ``pretrained``)."""
    kwargs = {"pretrained": pretrained} if pretrained else {}
    return create_model(spec.model, len(spec.channels), len(spec.classes), **kwargs)


def forward(model: nn.Module, batch: Batch, channels_last: bool) -> torch.Tensor:
    """Logits of a batch; temporal models get the mask and months."""
    if batch.mask is not None:
        return model(batch.x, mask=batch.mask, months=batch.months)
    x = batch.x.contiguous(memory_format=torch.channels_last) if channels_last else batch.x
    return model(x)


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA when ``amp``; nothing otherwise."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_split(
    model: nn.Module, split: Split, batch_size: int, device: torch.device, amp: bool = True, channels_last: bool = False
) -> np.ndarray:
    """Class probabilities ``(N, K)`` for every item of ``split``, in item order, each once."""
    model.eval()
    seen = torch.zeros(len(split), dtype=torch.int64, device=split.device)
    chunks, order = [], []
    for batch in split.batches(batch_size):
        with autocast(device, amp):
            logits = forward(model, batch, channels_last)
        chunks.append(logits.float().softmax(dim=1))
        order.append(batch.index)
        seen.index_add_(0, batch.index, torch.ones_like(batch.index))
    if not bool((seen == 1).all()):
        raise CroplandError("evaluation did not predict every item exactly once (internal error)")
    probs = torch.cat(chunks)
    out = torch.empty_like(probs)
    out[torch.cat(order)] = probs
    return out.cpu().numpy()


def evaluate_split(model: nn.Module, split: Split, classes: Sequence[str], cfg: TrainConfig) -> tuple[dict, np.ndarray]:
    """Metrics and probabilities of ``model`` on every item of ``split``."""
    device = resolve_device(cfg.device)
    probs = predict_split(model, split, cfg.eval_batch_size, device, cfg.amp, _channels_last(cfg, split))
    labels = split.labels.cpu().numpy()
    cm = confusion_matrix(labels, probs.argmax(1), len(classes))
    metrics = classification_metrics(cm)
    metrics["confusion"] = cm.tolist()
    with torch.no_grad():
        metrics["loss"] = float(
            F.nll_loss(torch.log(torch.from_numpy(probs).clamp(min=1e-12)), torch.from_numpy(labels))
        )
    return metrics, probs


def _channels_last(cfg: TrainConfig, split: Split) -> bool:
    return cfg.channels_last and resolve_device(cfg.device).type == "cuda" and not split.temporal


def _load_resume(run: Path, cfg: TrainConfig) -> dict | None:
    path = run / "last.pt"
    if not path.exists():
        return None
    config_path = run / "config.yaml"
    if not config_path.exists():
        raise CroplandError(f"cannot resume {run}: it has last.pt but no config.yaml; use a new --out")
    saved = yaml.safe_load(config_path.read_text("utf-8")) or {}
    now = json.loads(cfg.model_dump_json())
    ignored = {"out", "epochs", "time_budget_s", "patience", "device", "eval_batch_size", "threads",
               "loading", "device_memory_mb", "workers"}  # the batches are the same either way
    paths = {"dataset", "pretrained"}  # compared by the file they name: run/x and ./run/x agree

    def same(key: str) -> bool:
        if key in paths and saved.get(key) and now[key]:
            return Path(saved[key]).resolve() == Path(now[key]).resolve()
        return saved.get(key) == now[key]

    changed = sorted(k for k in now if k not in ignored and not same(k))
    if changed:
        raise CroplandError(f"cannot resume {run}: {', '.join(changed)} changed since; use a new --out")
    return load_checkpoint(path)


class Schedule:
    """Learning rate: linear warm-up (5 %), then cosine decay to 2 % of ``lr``.

    Progress is the larger of steps done / planned steps and, with a time budget, seconds
    spent / budget, so a run stopped by its budget still ends with a small learning rate.
    """

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int, steps_done: int = 0, seconds_done: float = 0.0) -> None:
        self.lr = cfg.lr
        self.total = cfg.epochs * steps_per_epoch
        self.budget = cfg.time_budget_s
        self.steps = steps_done
        self.started = time.perf_counter() - seconds_done

    def elapsed(self) -> float:
        """Training seconds so far (including before a resume)."""
        return time.perf_counter() - self.started

    def progress(self) -> float:
        """Fraction of the run done, 0 to 1."""
        by_steps = self.steps / self.total
        return min(1.0, max(by_steps, self.elapsed() / self.budget) if self.budget else by_steps)

    def out_of_time(self) -> bool:
        """True once the time budget is spent."""
        if not self.budget:
            return False
        return self.elapsed() >= self.budget

    def step(self, optimizer: torch.optim.Optimizer) -> float:
        """Set the learning rate for the next step; return it."""
        p = self.progress()
        factor = p / 0.05 if p < 0.05 else 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (p - 0.05) / 0.95))
        lr = self.lr * max(factor, 1e-3)
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.steps += 1
        return lr


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Train ``cfg.model``, keep the best validation epoch, test it; return ``metrics.json``."""
    cfg = resolve_config(cfg)
    device = torch.device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = Path(cfg.out)
    state = _load_resume(run, cfg) if resume else None
    if not resume and (run / "last.pt").exists():
        raise CroplandError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
    seed_everything(cfg.seed)
    data = prepare_data(cfg, device)
    write_text_atomic(run / "config.yaml", yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False))
    model = build_model(data.spec, cfg.pretrained).to(device)
    if _channels_last(cfg, data.train):
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda"
    )
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    history: list[dict] = []
    best: dict = {"accuracy": -1.0, "epoch": 0, "validation": None}
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
    schedule = Schedule(cfg, steps_per_epoch)
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history, best = state["history"], state["best"]
        if "rng" in state:  # runs saved before the random states were
            set_rng_states(state["rng"])
        schedule = Schedule(cfg, steps_per_epoch, state["steps"], sum(h["seconds"] for h in history))
        log.info("resumed %s after epoch %d", run, len(history))
    stop = _fit(model, data, cfg, optimizer, schedule, generator, history, best, run)
    return _finish(run, cfg, data, stop, history, best)


def _fit(model, data, cfg, optimizer, schedule, generator, history, best, run) -> str:
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        if cfg.patience and history and history[-1]["epoch"] - best["epoch"] >= cfg.patience:
            return "patience"
        if schedule.out_of_time():
            return "time budget"
        t0 = time.perf_counter()
        loss, accuracy, items = train_epoch(model, data.train, cfg, optimizer, schedule, generator)
        seconds = time.perf_counter() - t0
        val, _ = evaluate_split(model, data.validation, data.spec.classes, cfg)
        history.append({
            "epoch": epoch, "train_loss": loss, "train_accuracy": accuracy, "val_loss": val["loss"],
            "val_accuracy": val["accuracy"], "val_f1": val["f1"], "lr": optimizer.param_groups[0]["lr"],
            "seconds": seconds, "items": items, "items_per_s": items / seconds,
        })
        log.info("epoch %d: loss %.3f, accuracy %.3f, validation %.3f (%d items, %.1f s)",
                 epoch, loss, accuracy, val["accuracy"], items, seconds)
        if val["accuracy"] > best["accuracy"]:
            best.update(accuracy=val["accuracy"], epoch=epoch, validation=val)
            save_checkpoint({"model": model.state_dict(), "spec": data.spec.to_dict(), "epoch": epoch}, run / "best.pt")
        save_checkpoint({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "steps": schedule.steps,
            "generator": generator.get_state(), "rng": rng_states(), "history": history, "best": best,
            "spec": data.spec.to_dict(),
        }, run / "last.pt")
        write_text_atomic(run / "history.json", json.dumps(history, indent=1))
    return "time budget" if schedule.out_of_time() and len(history) < cfg.epochs else "epochs"


def train_epoch(model, split, cfg, optimizer, schedule, generator) -> tuple[float, float, int]:
    """One pass over the shuffled training items (cut short when the time budget is spent).

    Returns the mean loss, the accuracy and the items seen. ``cfg`` gives ``device``, ``amp``,
    ``batch_size``, ``augment``, ``label_smoothing`` and ``channels_last`` (a TrainConfig).
    """
    device = torch.device(cfg.device)
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    channels_last = _channels_last(cfg, split)
    for batch in split.batches(cfg.batch_size, shuffle=True, augment=cfg.augment, generator=generator):
        if len(batch.y) == 1 and seen:
            continue  # batch norm cannot train on one item; the shuffle drops another one next epoch
        schedule.step(optimizer)
        with autocast(device, cfg.amp):
            logits = forward(model, batch, channels_last)
            loss = F.cross_entropy(logits.float(), batch.y, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach() * len(batch.y)
        correct += (logits.argmax(1) == batch.y).sum()
        seen += len(batch.y)
        if schedule.out_of_time():
            break
    return float(total_loss) / seen, float(correct) / seen, seen


def _finish(run: Path, cfg: TrainConfig, data: PreparedData, stop: str, history: list[dict], best: dict) -> dict:
    device = torch.device(cfg.device)
    model = build_model(data.spec).to(device)
    model.load_state_dict(load_checkpoint(run / "best.pt", device)["model"])
    if _channels_last(cfg, data.test):
        model = model.to(memory_format=torch.channels_last)
    test, probs = evaluate_split(model, data.test, data.spec.classes, cfg)
    write_predictions(run / "predictions.csv", data.test, data.spec.classes, probs)
    metrics = {
        "model": cfg.model, "channels": cfg.channels, "seed": cfg.seed, "classes": list(data.spec.classes),
        "loading": data.loading,
        "items": {"training": len(data.train), "validation": len(data.validation), "test": len(data.test)},
        "best_epoch": best["epoch"], "epochs_run": len(history), "stopped_by": stop,
        "train_seconds": sum(h["seconds"] for h in history), "validation": best["validation"], "test": test,
    }
    write_text_atomic(run / "metrics.json", json.dumps(metrics, indent=1))
    log.info("%s: test accuracy %.3f, macro F1 %.3f on %d items", run, test["accuracy"], test["f1"], test["n"])
    return metrics


def write_predictions(path: Path, split: Split, classes: Sequence[str], probs: np.ndarray) -> None:
    """One row per item: name, true class, predicted class, probability of the prediction."""
    labels = split.labels.cpu().numpy()
    predicted = probs.argmax(1)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "label", "predicted", "correct", "probability"])
        for name, y, p, row in zip(split.names, labels, predicted, probs, strict=True):
            writer.writerow([name, classes[y], classes[p], int(y == p), f"{row[p]:.4f}"])
