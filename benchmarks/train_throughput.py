"""Training throughput: the fast path (data resident on the device) vs the naive path (PNGs).

Measured in the same run, for each model:

* fast: the split packed as uint8 ``(N, C, 65, 65)`` on the device (cropped to 64), batches
  gathered, normalised and augmented (random flips / rot90) on the device
  (:class:`cropland.data.tensors.TensorSplit`); bf16 autocast and channels_last on CUDA;
* naive: the published PNG tree read through a ``DataLoader`` with ImageFolder-style
  decoding (PIL -> tensor, random flips in the workers), like the original Keras generator;
* model only (ResNet-50): random tensors already on the device, the ceiling of the two.

Training images per second count every image: a temporal item of T months is T images.
Without ``--dataset`` the script writes its own synthetic PNG tree (no GDAL, no rasterio).
It replaces its device's part of the "Training throughput" section of docs/benchmarks.md.

Usage::

    PYTHONPATH=src python benchmarks/train_throughput.py --device cpu
    PYTHONPATH=src python benchmarks/train_throughput.py --device cuda

On a borrowed GPU machine whose files come back through ``$OUT`` (about 2-4 minutes)::

    cp docs/benchmarks.md $OUT/ && PYTHONUNBUFFERED=1 PYTHONPATH=src python3 \
        benchmarks/train_throughput.py --device cuda --doc $OUT/benchmarks.md --json $OUT/cuda.json

then copy the ``train_throughput:cuda`` block of ``$OUT/benchmarks.md`` into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cropland.data.preprocess import Normalization, Preprocessing
from cropland.data.tensors import TensorSplit
from cropland.models import create_model, is_temporal

DOC = Path(__file__).parents[1] / "docs" / "benchmarks.md"
SECTION = "## Training throughput"
MONTHS = (6, 7, 8, 9, 10)
INTRO = (
    "Training images per second (`benchmarks/train_throughput.py`), measured in one run per device. "
    "*fast*: the split packed as uint8 on the device, batches gathered, normalised and augmented "
    "(random flips / rot90) there, bf16 autocast and channels_last on CUDA. *naive*: the PNG tree "
    "through a `DataLoader` with ImageFolder-style PIL decoding and flips in the workers (like the "
    "original Keras generator). *model only*: random tensors already on the device. A temporal item "
    "of 5 months counts 5 images; ResNet-50 and the temporal models train at 64 x 64, 3 channels. "
    "On a CPU the model's arithmetic sets the pace, so both paths run close to the model-only rate; "
    "the fast path pays off where the model is fast, on a GPU."
)
PENDING = (
    "CUDA (NVIDIA H200) figures: not measured yet (no GPU in the session that wrote this); run "
    "`PYTHONPATH=src python benchmarks/train_throughput.py --device cuda` on the GPU machine."
)
DEFAULTS = {  # device type -> settings that keep the run short
    "cpu": {"batch_size": 32, "temporal_batch_size": 8, "steps": 10, "warmup": 3, "points": 120, "workers": 2},
    "cuda": {"batch_size": 1024, "temporal_batch_size": 256, "steps": 40, "warmup": 8, "points": 4000, "workers": 16},
}


def _write_point(args: tuple[Path, int, int]) -> None:
    from PIL import Image

    root, point, label = args
    rng = np.random.default_rng(point)
    split_dir = root / "2019" / "RGB" / "training" / f"CLASS{label}"
    split_dir.mkdir(parents=True, exist_ok=True)
    for month in MONTHS:
        base = np.array([40 + 20 * label, 120 - 10 * label, 60 + 12 * month], dtype=np.int16)
        pixels = np.clip(base + rng.integers(-30, 30, (65, 65, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(split_dir / f"POINT_{point}_2019{month:02d}_AB_CLASS{label}_RGB.png")


def make_png_tree(root: Path, points: int, classes: int = 10) -> Path:
    """A synthetic published-layout RGB tree: ``points`` x 5 months of 65 x 65 PNGs."""
    jobs = [(root, p, p % classes) for p in range(1, points + 1)]
    with ProcessPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(_write_point, jobs, chunksize=64))
    return root / "2019" / "RGB" / "training"


def load_pool(tree: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All PNGs as uint8 (N, 3, 65, 65), labels and (point, month) -> row for sequences."""
    from PIL import Image

    files = sorted(tree.glob("*/*.png"))
    classes = sorted({f.parent.name for f in files})
    images = np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files])
    labels = np.array([classes.index(f.parent.name) for f in files])
    keys = [(f.name.split("_")[1], f.name.split("_")[2]) for f in files]
    points = sorted({k[0] for k in keys})
    rows = np.full((len(points), len(MONTHS)), -1)
    for i, (point, yyyymm) in enumerate(keys):
        rows[points.index(point), MONTHS.index(int(yyyymm[4:]))] = i
    return images, labels, rows


class PngImages(torch.utils.data.Dataset):
    """ImageFolder-style: one PNG per item, decoded with PIL in the workers, random flips."""

    def __init__(self, tree: Path) -> None:
        from torchvision.datasets import ImageFolder
        from torchvision.transforms import v2

        self.folder = ImageFolder(str(tree), transform=v2.Compose([
            v2.CenterCrop(64), v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
            v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.25] * 3),
        ]))

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int):
        return self.folder[i]


class PngSequences(torch.utils.data.Dataset):
    """One item per point: its months' PNGs, decoded with PIL in the workers."""

    def __init__(self, tree: Path) -> None:
        self.images = PngImages(tree)
        self.rows = _sequence_rows(self.images.folder.samples)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        items = [self.images[int(r)] for r in self.rows[i]]
        return torch.stack([x for x, _ in items]), items[0][1]


def _sequence_rows(samples: list[tuple[str, int]]) -> np.ndarray:
    by_point: dict[str, list[int]] = {}
    for i, (path, _) in enumerate(samples):
        by_point.setdefault(Path(path).name.split("_")[1], []).append(i)
    return np.array([sorted(v, key=lambda r: samples[r][0]) for v in by_point.values() if len(v) == len(MONTHS)])


def train_step(model, optimizer, x, y, mask, device, channels_last):
    with (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    ):
        if mask is None:
            logits = model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
        else:
            logits = model(x, mask=mask)
        loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed(batches, model, optimizer, device, channels_last, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` steps after ``warmup`` steps (batches is an iterator)."""
    for _ in range(warmup):
        train_step(model, optimizer, *next(batches), device, channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, *next(batches), device, channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def fast_batches(split: TensorSplit, batch_size: int, generator: torch.Generator):
    while True:
        index = torch.randint(0, len(split), (batch_size,), device=split.rows.device, generator=generator)
        b = split.batch(index, augment=True, generator=generator)
        yield b.x, b.y, b.mask


def naive_batches(dataset, batch_size: int, workers: int, device: torch.device, temporal: bool):
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
        drop_last=True, persistent_workers=workers > 0, prefetch_factor=4 if workers else None,
    )
    while True:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device) if temporal else None
            yield x, y, mask


def device_split(images, labels, rows, device, temporal: bool) -> TensorSplit:
    pool = torch.from_numpy(images[:, :, :64, :64].copy()).to(device)
    if temporal:
        index = torch.from_numpy(rows).to(device)
        item_labels = torch.from_numpy(labels[rows.max(axis=1)]).to(device)
    else:
        index = torch.arange(len(images), device=device)
        item_labels = torch.from_numpy(labels).to(device)
    months = torch.zeros(index.shape, dtype=torch.long, device=device)
    stats = Normalization(("R", "G", "B"), np.full(3, 0.5), np.full(3, 0.25))
    return TensorSplit(pool, index, item_labels, months, 1 / 255, [], Preprocessing(normalization=stats))


def measure(name: str, args, tree: Path, data, device: torch.device) -> list[dict]:
    temporal = is_temporal(name)
    batch = args.temporal_batch_size if temporal else args.batch_size
    per_item = len(MONTHS) if temporal else 1
    channels_last = device.type == "cuda" and not temporal
    out = []
    paths = {
        "fast": lambda: fast_batches(
            device_split(*data, device, temporal), batch, torch.Generator(device).manual_seed(0)
        ),
        "naive": lambda: naive_batches(
            PngSequences(tree) if temporal else PngImages(tree), batch, args.workers, device, temporal
        ),
    }
    if name == "resnet50":
        x = torch.randn(batch, 3, 64, 64, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        paths["model only"] = lambda: iter(lambda: (x, y, None), None)
    for path, make in paths.items():
        torch.manual_seed(0)
        model = create_model(name, 3, 10).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if args.compile:
            model = torch.compile(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
        seconds = timed(make(), model, optimizer, device, channels_last, args.warmup, args.steps)
        ips = args.steps * batch * per_item / seconds
        out.append({"model": name, "path": path, "batch": batch, "images_per_item": per_item, "steps": args.steps,
                    "seconds": seconds, "images_per_s": ips})
        print(f"{name:22s} {path:10s} batch {batch:5d}: {ips:10.1f} training images/s", flush=True)
    return out


def machine(device: torch.device) -> str:
    cores = len(os.sched_getaffinity(0))
    text = f"{platform.processor() or platform.machine()}, {cores} cores, torch {torch.__version__}"
    if device.type == "cuda":
        text = f"{torch.cuda.get_device_name(device)}; {text}"
    return text


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def write_section(results: list[dict], device: torch.device, command: str, note: str, doc: Path = DOC) -> None:
    """Replace this device's part of the "Training throughput" section of docs/benchmarks.md."""
    kind = device.type
    begin, end = f"<!-- train_throughput:{kind}:begin -->", f"<!-- train_throughput:{kind}:end -->"
    rows = []
    for model in dict.fromkeys(r["model"] for r in results):
        by_path = {r["path"]: r for r in results if r["model"] == model}
        ratio = by_path["fast"]["images_per_s"] / by_path["naive"]["images_per_s"]
        cells = [_rate(by_path[p]["images_per_s"]) if p in by_path else "" for p in ("fast", "naive", "model only")]
        rows.append(f"| {model} | {by_path['fast']['batch']} | {' | '.join(cells)} | {ratio:.1f}x |")
    block = "\n".join([
        begin,
        f"### {kind.upper()}: {machine(device)}",
        "",
        f"Date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; command: `{command}`. {note}",
        "",
        "| model | batch | fast (images/s) | naive (images/s) | model only | fast / naive |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        end,
    ])
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    if SECTION not in text:
        text = text.rstrip() + "\n\n" + SECTION + "\n\n" + INTRO + "\n\n" + PENDING + "\n"
    if kind == "cuda":
        text = text.replace("\n" + PENDING + "\n", "")
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        head, tail = text.split(SECTION, 1)
        nxt = tail.find("\n## ")
        insert_at = len(tail) if nxt < 0 else nxt
        text = head + SECTION + tail[:insert_at].rstrip() + "\n\n" + block + "\n" + tail[insert_at:]
    tmp = doc.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="resnet50,cnn3d,tempcnn,temporal_transformer,lrcn")
    parser.add_argument("--dataset", type=Path, help="An RGB split folder of a PNG tree ({year}/RGB/training).")
    for key in DEFAULTS["cpu"]:
        parser.add_argument(f"--{key.replace('_', '-')}", type=int)
    parser.add_argument("--compile", action="store_true", help="torch.compile the models.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    parser.add_argument("--no-doc", action="store_true", help="Do not touch docs/benchmarks.md.")
    parser.add_argument("--doc", type=Path, default=DOC, help="The Markdown file to update (docs/benchmarks.md).")
    args = parser.parse_args()
    device = torch.device(args.device)
    for key, value in DEFAULTS[device.type].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tree = args.dataset or make_png_tree(Path(tmp), args.points)
        data = load_pool(tree)
        print(f"data: {len(data[0])} PNGs ({time.perf_counter() - t0:.1f} s to prepare)", flush=True)
        results = [r for name in args.models.split(",") for r in measure(name, args, tree, data, device)]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if not args.no_doc:
        command = "PYTHONPATH=src python benchmarks/train_throughput.py " + " ".join(
            shlex.quote(a) for a in sys.argv[1:]
        )
        note = (f"{len(data[0])} synthetic 65 x 65 RGB PNGs (cropped to 64), {args.steps} timed steps after "
                f"{args.warmup} warm-up steps, naive path with {args.workers} DataLoader workers"
                + (", torch.compile" if args.compile else "") + ".")
        if device.type == "cpu":
            note += f" Load average {load[0]:.1f} before the run, {os.getloadavg()[0]:.1f} after (1 min)."
        write_section(results, device, command, note, args.doc)


if __name__ == "__main__":
    main()
