"""Training at the published size (78,536 images) and ten times it: resident vs streaming path.

For each size the script writes a packed dataset (``docs/format.md``, "Packed arrays") directly:
the published dataset's shape (points = images x 6,633 / 78,536, 2017-2020, June-October, 10
classes in equal shares, 70/15/15 by point) with RGB uint8 64 x 64 images, the published PNGs'
content and size (a class colour per month plus noise; the pixels do not matter for these
figures). Then, each in its own process, for each path:

* *resident* (``load_tensors``): the whole training split in one pool on the device;
* *stream* (``StreamSplit``): batches read from the memory-mapped arrays by DataLoader workers
  into pinned memory, ``--prefetch`` batches ahead each;

it opens the pack (checksums verified, as ``cropland train`` does), computes the training
split's statistics, loads or opens the split and trains one epoch over it with
``cropland.train.loop.train_epoch`` (the loop of ``cropland train``: normalisation and
augmentation on the device). A sampler records, every 50 ms, the memory of the process and its
DataLoader workers: private (anonymous) memory and mapped file pages separately (mapped pages of
the packed file are page cache the kernel can drop; private memory is what a run needs), and
on CUDA the peak device memory allocated.

The model defaults to ``probe`` (average-pooled 8 x 8 pixels -> linear), a model so cheap that
the epoch time is the data path's; on a CPU a real CNN takes hours per epoch at these sizes (see
"Training throughput"); ``--model small_cnn`` (any registered name) on a GPU. No GDAL, rasterio or
pydantic is needed. The packs are deleted afterwards (``--keep`` keeps them).

With ``--demo DATASET`` (a folder made by ``cropland demo``) it trains instead, with
``cropland train``, the same model on the demo both ways, the resident path and the streaming
path forced, and reports their test accuracy (that mode needs the whole package).

Usage (about 20 GB of free disk for the 785,360-image pack; 30 min on 2 busy cores)::

    PYTHONPATH=src python benchmarks/train_scale.py --work /tmp/train-scale --device cpu
    PYTHONPATH=src python benchmarks/train_scale.py --work /tmp/train-scale --device cuda --model small_cnn
    cropland demo --out demo-out && PYTHONPATH=src python benchmarks/train_scale.py --demo demo-out
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _doc import DOC, provenance, write_section  # noqa: E402

PUBLISHED_IMAGES, PUBLISHED_POINTS = 78_536, 6_633
YEARS, MONTHS = (2017, 2018, 2019, 2020), (6, 7, 8, 9, 10)
CLASSES = ("BARLEY", "CANOLA", "CORN", "MIXEDWOOD", "OAT", "ORCHARD", "PASTURE", "POTATO", "SOYBEAN", "SPRING_WHEAT")
PROVINCES = ("AB", "SK", "MB", "ON", "QC")
CHANNELS = ("RGB_R", "RGB_G", "RGB_B")
SIZE = 64
CHUNK = 2048  # images generated and written at once


def plan(images: int, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Per split: point, year, month, class index of every image (sorted by point, year, month)."""
    rng = np.random.default_rng(seed)
    slots = len(YEARS) * len(MONTHS)
    points = max(round(images * PUBLISHED_POINTS / PUBLISHED_IMAGES), math.ceil(images / slots))
    chosen = np.sort(rng.choice(points * slots, images, replace=False))
    point, rest = np.divmod(chosen, slots)
    year, month = np.divmod(rest, len(MONTHS))
    label = rng.permutation(np.arange(points) % len(CLASSES))
    order = rng.permutation(points)
    split_of = np.empty(points, dtype=np.int8)
    split_of[order[: round(0.7 * points)]] = 0
    split_of[order[round(0.7 * points) : round(0.85 * points)]] = 1
    split_of[order[round(0.85 * points) :]] = 2
    out = {}
    for s, name in enumerate(("training", "validation", "test")):
        keep = split_of[point] == s
        out[name] = {"point": point[keep] + 1, "year": np.array(YEARS)[year[keep]],
                     "month": np.array(MONTHS)[month[keep]], "label": label[point[keep]]}
    return out


def _pixels(label: np.ndarray, month: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    colour = (40 + 19 * np.arange(len(CLASSES))[:, None] * np.array([1, 3, 7]) % 170).astype(np.int16)
    base = colour[label] + 8 * (month[:, None] - 8)
    noise = rng.integers(-40, 41, (len(label), 3, SIZE, SIZE), dtype=np.int16)
    return np.clip(base[:, :, None, None] + noise, 0, 255).astype(np.uint8)


def write_pack(root: Path, images: int, seed: int = 0) -> Path:
    """A packed dataset of ``images`` RGB images (see the module docstring); returns ``root``."""
    from cropland import __version__
    from cropland.data.readers import PACK_FORMAT, PACK_VERSION

    root.mkdir(parents=True, exist_ok=True)
    entries = {}
    for s, (split, table) in enumerate(plan(images, seed).items()):
        n = len(table["point"])
        shape = (n, len(CHANNELS), SIZE, SIZE)
        digest = hashlib.sha256()
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
        rng = np.random.default_rng([seed, s])
        blocks = (_pixels(table["label"][i : i + CHUNK], table["month"][i : i + CHUNK], rng).tobytes()
                  for i in range(0, n, CHUNK))
        with open(root / f"{split}_images.npy", "wb") as f:
            for block in itertools.chain([header.getvalue()], blocks):  # one chunk in memory at a time
                f.write(block)
                digest.update(block)
        with open(root / f"{split}_samples.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["name", "point_id", "year", "month", "province", "label", "label_index"])
            for p, y, m, k in zip(table["point"], table["year"], table["month"], table["label"], strict=True):
                province, label = PROVINCES[p % len(PROVINCES)], CLASSES[k]
                writer.writerow([f"POINT_{p}_{y}{m:02d}_{province}_{label}", p, y, m, province, label, k])
        entries[split] = {
            "count": n, "shape": list(shape), "dtype": "uint8",
            "images": {"file": f"{split}_images.npy", "sha256": digest.hexdigest()},
            "samples": {"file": f"{split}_samples.csv", "sha256": _sha256(root / f"{split}_samples.csv")},
        }
    manifest = {
        "format": PACK_FORMAT, "version": PACK_VERSION, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cropland_version": __version__, "source": {"path": "benchmarks/train_scale.py", "kind": "synthetic"},
        "channels": list(CHANNELS), "classes": list(CLASSES), "scale": 1 / 255, "size": SIZE, "splits": entries,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MemorySampler(threading.Thread):
    """Peak memory of this process and its children (DataLoader workers), every ``period`` s.

    Proportional set sizes (``/proc/PID/smaps_rollup``), so pages that forked workers share
    with their parent count once: *private* is anonymous and shared-memory pages (the pool,
    batches, pinned buffers, Python objects), *file* is mapped file pages (the packed arrays'
    page cache, and the libraries' code).
    """

    def __init__(self, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.period, self.private, self.mapped, self.done = period, 0, 0, threading.Event()

    @staticmethod
    def _status(pid: int) -> dict[str, int]:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                lines = [line.split(":", 1) for line in f if line.startswith("Pss_")]
            return {k: int(v.split()[0]) * 1024 for k, v in lines}
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _family(root: int) -> list[int]:
        pids = [root]
        try:
            with open(f"/proc/{root}/task/{root}/children", encoding="ascii") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def run(self) -> None:
        while not self.done.is_set():
            stats = [self._status(pid) for pid in self._family(os.getpid())]
            self.private = max(self.private, sum(s.get("Pss_Anon", 0) + s.get("Pss_Shmem", 0) for s in stats))
            self.mapped = max(self.mapped, sum(s.get("Pss_File", 0) for s in stats))
            time.sleep(self.period)


def measure(dataset: Path, loading: str, device_name: str, model_name: str, batch_size: int, workers: int,
            prefetch: int) -> dict:
    """Open, statistics, load (or open the stream), one training epoch; timings and peak memory."""
    import torch
    from torch import nn

    from cropland.data.datasets import StaticDataset, compute_stats
    from cropland.data.preprocess import Preprocessing
    from cropland.data.readers import PackedReader
    from cropland.data.stream import StreamSplit
    from cropland.data.tensors import load_tensors
    from cropland.models import create_model
    from cropland.train.loop import Schedule, train_epoch

    device = torch.device(device_name)
    sampler = MemorySampler()
    sampler.start()
    t0 = time.perf_counter()
    reader = PackedReader(dataset)
    train = StaticDataset(reader, "training", "RGB")
    t_open = time.perf_counter()
    prep = Preprocessing(normalization=compute_stats(train))
    t_stats = time.perf_counter()
    split = (
        load_tensors(train, prep, device)
        if loading == "resident"
        else StreamSplit(train, prep, device, workers, prefetch)
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_load = time.perf_counter()
    torch.manual_seed(0)
    if model_name == "probe":
        model = nn.Sequential(nn.AdaptiveAvgPool2d(8), nn.Flatten(), nn.Linear(len(CHANNELS) * 64, len(CLASSES)))
    else:
        model = create_model(model_name, len(CHANNELS), len(CLASSES))
    model = model.to(device)
    cfg = SimpleNamespace(device=str(device), amp=True, batch_size=batch_size, augment=True, label_smoothing=0.0,
                          channels_last=False, lr=1e-3, epochs=1, time_budget_s=None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    schedule = Schedule(cfg, math.ceil(len(split) / batch_size))
    generator = torch.Generator(device=device).manual_seed(0)
    loss, accuracy, items = train_epoch(model, split, cfg, optimizer, schedule, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_epoch = time.perf_counter()
    sampler.done.set()
    sampler.join()
    return {
        "loading": loading, "train_images": items, "open_s": t_open - t0, "stats_s": t_stats - t_open,
        "load_s": t_load - t_stats, "epoch_s": t_epoch - t_load, "images_per_s": items / (t_epoch - t_load),
        "peak_private_bytes": sampler.private, "peak_mapped_bytes": sampler.mapped,
        "peak_device_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "train_accuracy": accuracy, "load_average": os.getloadavg()[0],
    }


def _gib(value: int | None) -> str:
    return "--" if value is None else f"{value / 2**30:.2f}"


def report(results: list[dict], args, command: str, device_text: str) -> str:
    rows = [
        f"| {r['images']:,} | {r['pack_bytes'] / 2**30:.1f} | {r['loading']} | {r['train_images']:,} | "
        f"{r['open_s'] + r['stats_s']:.0f} | {r['load_s']:.0f} | {r['epoch_s']:.0f} | {r['images_per_s']:,.0f} | "
        f"{_gib(r['peak_private_bytes'])} | {_gib(r['peak_mapped_bytes'])} | {_gib(r['peak_device_bytes'])} | "
        f"{r['load_average']:.1f} |"
        for r in results
    ]
    model = "a linear probe on 8 x 8 average-pooled pixels (the data path sets the pace)" \
        if args.model == "probe" else args.model
    return "\n".join([
        f"## Training at scale: resident vs streaming ({args.device.upper()})",
        "",
        provenance(command) + f" Device: {device_text}.",
        "",
        f"`benchmarks/train_scale.py`: a packed dataset of the published shape (70/15/15 by point, 10 classes, "
        f"2017-2020, June-October) with **RGB uint8 64 x 64** images, the content and size of the published "
        f"RGB PNGs (the 18-channel float16 pack is 12x larger: 11.6 GB at 78,536 images, 116 GB at 785,360, more "
        f"than this machine's disk allows for the larger one). One epoch over the training split of {model}, "
        f"batch {args.batch_size}, augmentation on; each path in its own process; stream: {args.workers} "
        f"DataLoader workers, {args.prefetch} batches ahead each. *Open + stats*: checksums and the training "
        f"split's statistics (both paths); *load*: the split into the device pool (resident) or the stream's "
        f"set-up. Peak memory of the process and its workers (proportional set size: pages shared with forked "
        f"workers count once): *private*, anonymous memory (what a run needs); *file*, mapped file pages (the "
        f"pack's page cache, which the kernel drops under pressure, and the libraries' code). On a GPU, "
        f"`--device cuda --model small_cnn` writes its own section beside this one.",
        "",
        "| images | pack GiB | path | training images | open + stats s | load s | epoch s | images/s | "
        "private GiB | file GiB | device GiB | load avg |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])


def demo(dataset: Path, work: Path, device: str, model: str, epochs: int) -> list[dict]:
    """``cropland train`` on the demo (packed RGB) with each path; the metrics of each run."""
    cli = [sys.executable, "-m", "cropland.cli"]
    packed = work / "demo-packed"
    if not (packed / "manifest.json").exists():
        subprocess.run([*cli, "pack", str(dataset), str(packed), "--channels", "RGB", "--size", "64"], check=True,
                       capture_output=True)
    results = []
    for loading in ("resident", "stream"):
        run = work / f"demo-{model}-{loading}"
        shutil.rmtree(run, ignore_errors=True)
        subprocess.run([*cli, "train", "--dataset", str(packed), "--out", str(run), "--model", model, "--channels",
                        "RGB", "--resize", "32", "--epochs", str(epochs), "--batch-size", "16", "--device", device,
                        "--loading", loading], check=True, capture_output=True)
        metrics = json.loads((run / "metrics.json").read_text())
        history = json.loads((run / "history.json").read_text())
        results.append({"loading": metrics["loading"], "accuracy": metrics["test"]["accuracy"],
                        "f1": metrics["test"]["f1"], "n": metrics["test"]["n"], "epochs": len(history),
                        "seconds": metrics["train_seconds"], "final_train_loss": history[-1]["train_loss"]})
        print(json.dumps(results[-1]), flush=True)
    return results


def demo_report(results: list[dict], args, command: str) -> str:
    rows = [f"| {r['loading']} | {r['epochs']} | {r['final_train_loss']:.6f} | {r['accuracy']:.3f} | {r['f1']:.3f} | "
            f"{r['n']} | {r['seconds']:.0f} |" for r in results]
    return "\n".join([
        f"## Training on the demo: resident vs streaming ({args.device.upper()})",
        "",
        provenance(command),
        "",
        f"`cropland train --model {args.model if args.model != 'probe' else 'tempcnn'} --channels RGB --resize 32 "
        f"--batch-size 16 --loading resident|stream` on the demo (`cropland demo`: synthetic pixels, packed as RGB "
        f"64 x 64); the streaming path gives the same batches, so the same training.",
        "",
        "| path | epochs | last training loss | test accuracy | test macro F1 | test items | training s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])


def _device_text(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"CPU, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, action="append", help="Dataset sizes (default 78536 and 785360).")
    parser.add_argument("--work", type=Path, default=Path("train-scale"), help="Folder for the packs.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="probe", help="probe, or a registered model (small_cnn, resnet50, ...).")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prefetch", type=int, default=4)
    parser.add_argument("--paths", default="resident,stream")
    parser.add_argument("--keep", action="store_true", help="Keep the packs.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--no-doc", action="store_true", help="Do not touch docs/benchmarks.md.")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--demo", type=Path, help="Train on this `cropland demo` folder both ways instead.")
    parser.add_argument("--epochs", type=int, default=12, help="Epochs of the --demo runs.")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child: measure one pack and path
    parser.add_argument("--loading", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.loading, args.device, args.model, args.batch_size,
                                 args.workers, args.prefetch)))
        return
    command = "PYTHONPATH=src python benchmarks/train_scale.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.demo:
        model = "tempcnn" if args.model == "probe" else args.model
        results = demo(args.demo, args.work, args.device, model, args.epochs)
        if not args.no_doc:
            write_section(
                f"train_scale_demo:{args.device.split(':')[0]}", demo_report(results, args, command), args.doc
            )
        return
    results = []
    for images in args.images or [PUBLISHED_IMAGES, 10 * PUBLISHED_IMAGES]:
        root = args.work / f"pack-{images}"
        t0 = time.perf_counter()
        if not (root / "manifest.json").exists():
            write_pack(root, images)
        pack_bytes = sum(p.stat().st_size for p in root.iterdir())
        print(f"{images} images: pack {pack_bytes / 2**30:.2f} GiB ({time.perf_counter() - t0:.0f} s)", flush=True)
        for loading in args.paths.split(","):
            child = [sys.executable, __file__, "--measure", str(root), "--loading", loading, "--device", args.device,
                     "--model", args.model, "--batch-size", str(args.batch_size), "--workers", str(args.workers),
                     "--prefetch", str(args.prefetch)]
            done = subprocess.run(child, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{images} images, {loading}: failed\n{done.stderr[-3000:]}")
            result = {"images": images, "pack_bytes": pack_bytes, **json.loads(done.stdout.strip().splitlines()[-1])}
            print(json.dumps(result), flush=True)
            results.append(result)
        if not args.keep:
            shutil.rmtree(root)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if not args.no_doc:
        write_section(
            f"train_scale:{args.device.split(':')[0]}",
            report(results, args, command, _device_text(args.device)),
            args.doc,
        )


if __name__ == "__main__":
    main()
