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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cropland.data.datasets import StaticDataset, TemporalDataset, compute_stats
from cropland.data.readers import Reader, open_reader, render_settings, selected_channels
from cropland.data.tensors import Batch, TensorSplit, load_tensors
from cropland.errors import CroplandError
from cropland.io import atomic_path, write_text_atomic
from cropland.models import create_model, is_temporal
from cropland.train.checkpoint import load_checkpoint, save_checkpoint
from cropland.train.metrics import classification_metrics, confusion_matrix

if TYPE_CHECKING:  # no pydantic at run time: a GPU machine without it trains from this module
    from cropland.train.config import TrainConfig

log = logging.getLogger(__name__)
PAPER_TRIPLET_MODELS = ("lrcn", "cnn3d")


@dataclass
class PreparedData:
    """The three splits on the device and what is needed to rebuild the inputs."""

    train: TensorSplit
    validation: TensorSplit
    test: TensorSplit
    meta: dict


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill ``auto`` fields (device, temporal mode) so the saved config says what ran."""
    mode = cfg.temporal_mode
    if mode == "auto":
        mode = "triplet" if cfg.model in PAPER_TRIPLET_MODELS else "series"
    return cfg.model_copy(update={"device": str(resolve_device(cfg.device)), "temporal_mode": mode})


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> dict:
    """Python, NumPy and torch (CPU and CUDA) random states: dropout draws from them.

    Plain values and tensors only, so a checkpoint holding them loads with ``weights_only``.
    """
    kind, key, pos, has_gauss, gauss = np.random.get_state()
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


def make_dataset(reader: Reader, split: str, meta: dict) -> StaticDataset | TemporalDataset:
    """The static or temporal dataset a run's ``meta`` describes (unnormalised: see :func:`load_tensors`)."""
    kwargs = {"months": meta["months"], "size": meta["size"]}
    if meta["temporal"]:
        return TemporalDataset(reader, split, meta["channels"], mode=meta["temporal_mode"], **kwargs)
    return StaticDataset(reader, split, meta["channels"], **kwargs)


def prepare_data(cfg: TrainConfig, device: torch.device) -> PreparedData:
    """Read the three splits (the dataset's own split file) once and put them on ``device``."""
    reader = open_reader(cfg.dataset, cfg.channels, cfg.source)
    temporal = is_temporal(cfg.model)
    meta = {
        "model": cfg.model,
        "temporal": temporal,
        "temporal_mode": cfg.temporal_mode if temporal else None,
        "months": list(cfg.months),
        "size": cfg.size,
        "resize": cfg.resize,
        "classes": list(reader.classes),
        "source": type(reader).__name__,
    }
    meta["channels"] = list(selected_channels(reader, cfg.channels))
    meta["render"] = render_settings(cfg.dataset)  # predict renders GeoTIFFs as these PNGs were
    if meta["size"] is None and len(reader.records):  # what the model sees, so predict crops alike
        meta["size"] = int(reader.read(0, meta["channels"][:1]).shape[-1])
    train_ds = make_dataset(reader, "training", meta)
    normalization = compute_stats(train_ds)
    meta["normalization"] = normalization.to_dict()
    splits = {
        split: load_tensors(make_dataset(reader, split, meta), normalization, device, cfg.resize)
        for split in ("training", "validation", "test")
    }
    log.info(
        "data: %s items training, %s validation, %s test; %d channels; classes %s",
        *(len(s) for s in splits.values()), len(meta["channels"]), ", ".join(reader.classes),
    )
    return PreparedData(splits["training"], splits["validation"], splits["test"], meta)


def build_model(meta: dict, pretrained: Path | None = None) -> nn.Module:
    """The model a run's ``meta`` describes (random weights unless ``pretrained``)."""
    kwargs = {"pretrained": pretrained} if pretrained else {}
    return create_model(meta["model"], len(meta["channels"]), len(meta["classes"]), **kwargs)


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
    model: nn.Module, split: TensorSplit, batch_size: int, device: torch.device, amp: bool = True, channels_last: bool = False
) -> np.ndarray:
    """Class probabilities ``(N, K)`` for every item of ``split``, in item order, each once."""
    model.eval()
    seen = torch.zeros(len(split), dtype=torch.int64, device=split.rows.device)
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


def evaluate_split(model: nn.Module, split: TensorSplit, classes: list[str], cfg: TrainConfig) -> tuple[dict, np.ndarray]:
    """Metrics and probabilities of ``model`` on every item of ``split``."""
    device = resolve_device(cfg.device)
    probs = predict_split(model, split, cfg.eval_batch_size, device, cfg.amp, _channels_last(cfg, split))
    labels = split.labels.cpu().numpy()
    cm = confusion_matrix(labels, probs.argmax(1), len(classes))
    metrics = classification_metrics(cm)
    metrics["confusion"] = cm.tolist()
    with torch.no_grad():
        metrics["loss"] = float(F.nll_loss(torch.log(torch.from_numpy(probs).clamp(min=1e-12)), torch.from_numpy(labels)))
    return metrics, probs


def _channels_last(cfg: TrainConfig, split: TensorSplit) -> bool:
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
    ignored = {"out", "epochs", "time_budget_s", "patience", "device", "eval_batch_size", "threads"}
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
        return bool(self.budget) and self.elapsed() >= self.budget

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
    model = build_model(data.meta, cfg.pretrained).to(device)
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
        loss, accuracy, items = _train_epoch(model, data.train, cfg, optimizer, schedule, generator)
        seconds = time.perf_counter() - t0
        val, _ = evaluate_split(model, data.validation, data.meta["classes"], cfg)
        history.append({
            "epoch": epoch, "train_loss": loss, "train_accuracy": accuracy, "val_loss": val["loss"],
            "val_accuracy": val["accuracy"], "val_f1": val["f1"], "lr": optimizer.param_groups[0]["lr"],
            "seconds": seconds, "items": items, "items_per_s": items / seconds,
        })
        log.info("epoch %d: loss %.3f, accuracy %.3f, validation %.3f (%d items, %.1f s)",
                 epoch, loss, accuracy, val["accuracy"], items, seconds)
        if val["accuracy"] > best["accuracy"]:
            best.update(accuracy=val["accuracy"], epoch=epoch, validation=val)
            save_checkpoint({"model": model.state_dict(), "meta": data.meta, "epoch": epoch}, run / "best.pt")
        save_checkpoint({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "steps": schedule.steps,
            "generator": generator.get_state(), "rng": rng_states(), "history": history, "best": best,
            "meta": data.meta,
        }, run / "last.pt")
        write_text_atomic(run / "history.json", json.dumps(history, indent=1))
    return "time budget" if schedule.out_of_time() and len(history) < cfg.epochs else "epochs"


def _train_epoch(model, split, cfg, optimizer, schedule, generator) -> tuple[float, float, int]:
    """One pass over the shuffled training items (cut short when the time budget is spent)."""
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
    model = build_model(data.meta).to(device)
    model.load_state_dict(load_checkpoint(run / "best.pt", device)["model"])
    if _channels_last(cfg, data.test):
        model = model.to(memory_format=torch.channels_last)
    test, probs = evaluate_split(model, data.test, data.meta["classes"], cfg)
    write_predictions(run / "predictions.csv", data.test, data.meta["classes"], probs)
    metrics = {
        "model": cfg.model, "channels": cfg.channels, "seed": cfg.seed, "classes": data.meta["classes"],
        "items": {"training": len(data.train), "validation": len(data.validation), "test": len(data.test)},
        "best_epoch": best["epoch"], "epochs_run": len(history), "stopped_by": stop,
        "train_seconds": sum(h["seconds"] for h in history), "validation": best["validation"], "test": test,
    }
    write_text_atomic(run / "metrics.json", json.dumps(metrics, indent=1))
    log.info("%s: test accuracy %.3f, macro F1 %.3f on %d items", run, test["accuracy"], test["f1"], test["n"])
    return metrics


def write_predictions(path: Path, split: TensorSplit, classes: list[str], probs: np.ndarray) -> None:
    """One row per item: name, true class, predicted class, probability of the prediction."""
    labels = split.labels.cpu().numpy()
    predicted = probs.argmax(1)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "label", "predicted", "correct", "probability"])
        for name, y, p, row in zip(split.names, labels, predicted, probs, strict=True):
            writer.writerow([name, classes[y], classes[p], int(y == p), f"{row[p]:.4f}"])
