"""Publish a dataset and compare the release with the PNG tree and the packed format.

Usage: ``PYTHONPATH=src python benchmarks/publish_speed.py DATASET`` (e.g. the output of
``cropland demo``). Measured in one run, in a temporary folder:

* ``cropland publish`` wall and CPU time, and the size of its shards, against the PNG tree
  on disk and ``cropland pack`` (time and size: all 18 channels float16, and RGB uint8);
* training images/s of one model (``small_cnn``, RGB, batch 64, CPU) fed by a ``DataLoader``
  over ``StaticDataset`` reading the shards in storage order (streaming: row group by row
  group) against the same loader over the packed arrays, and the time to load the training
  split into memory (``load_tensors``, the path ``cropland train`` takes) from each.

The figures replace the "Publishing" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cropland.data.datasets import StaticDataset, compute_stats
from cropland.data.pack import pack
from cropland.data.preprocess import Preprocessing
from cropland.data.readers import open_reader
from cropland.data.tensors import load_tensors
from cropland.models import create_model
from cropland.publish import publish

sys.path.insert(0, str(Path(__file__).parent))
from _doc import provenance, write_section  # noqa: E402
from export_speed import Timer  # noqa: E402


def size_of(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def train_rate(reader, steps: int, batch: int = 64) -> float:
    """Training images/s of small_cnn fed by a DataLoader over the reader, in storage order."""
    dataset = StaticDataset(reader, "training", "RGB")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, drop_last=True)
    torch.manual_seed(0)
    model = create_model("small_cnn", 3, len(reader.classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    done, start = 0, None
    for epoch_batches in iter(lambda: iter(loader), None):
        for item in epoch_batches:
            if done == 2 and start is None:  # two warm-up steps
                start, done = time.perf_counter(), 0
            loss = F.cross_entropy(model(item["image"]), item["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if start is not None and done == steps:
                return steps * batch / (time.perf_counter() - start)
    raise AssertionError("unreachable")


def load_time(reader) -> float:
    dataset = StaticDataset(reader, "training", "RGB")
    with Timer() as t:
        load_tensors(dataset, Preprocessing(normalization=compute_stats(dataset)))
    return t.wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with Timer() as t_publish:
            release = publish(args.dataset, tmp / "release")
        with Timer() as t_again:
            publish(args.dataset, tmp / "again")
        identical = all((tmp / "again" / p.relative_to(release)).read_bytes() == p.read_bytes()
                        for p in release.rglob("*") if p.is_file())
        with Timer() as t_pack_all:
            pack(args.dataset, tmp / "packed-all", channels="all", source="tif")
        with Timer() as t_pack_rgb:
            pack(args.dataset, tmp / "packed-rgb", channels="RGB", source="png")
        png_tree = [p for p in args.dataset.glob("[0-9][0-9][0-9][0-9]/*/*/*/*.png")]
        sizes = {
            "PNG tree (7 image types)": size_of(png_tree),
            "GeoTIFFs (tif/, 19 bands)": size_of((args.dataset / "tif").rglob("*.tif")),
            "release: static shards": size_of((release / "data" / "static").glob("*.parquet")),
            "release: temporal shards": size_of((release / "data" / "temporal").glob("*.parquet")),
            "release: metadata (card, croissant, STAC, checksums)": size_of(
                p for p in release.rglob("*") if "data" not in p.relative_to(release).parts),
            "packed, 18 channels float16": size_of((tmp / "packed-all").iterdir()),
            "packed, RGB uint8": size_of((tmp / "packed-rgb").iterdir()),
        }
        shards, packed = open_reader(release, "RGB"), open_reader(tmp / "packed-rgb")
        rates = {"shards, streamed": train_rate(shards, args.steps), "packed": train_rate(packed, args.steps)}
        loads = {"shards": load_time(open_reader(release, "RGB")), "packed": load_time(packed)}
    n = len(shards.records)
    n_train = sum(r.split == "training" for r in shards.records)
    command = "PYTHONPATH=src python benchmarks/publish_speed.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    mb = lambda b: f"{b / 2**20:,.1f} MiB"  # noqa: E731
    lines = [
        "## Publishing",
        "",
        provenance(command),
        "",
        f"DATASET: the output of `cropland demo` ({n} samples, 64 x 64). `cropland publish` wrote the "
        f"release in {t_publish.wall:.1f} s wall, {t_publish.cpu:.1f} s CPU (again: {t_again.wall:.1f} s; "
        f"byte-identical: {'yes' if identical else 'NO'}); `cropland pack` took {t_pack_all.wall:.1f} s "
        f"(18 channels from the GeoTIFFs) and {t_pack_rgb.wall:.1f} s (RGB from the PNG tree).",
        "",
        "| data | size |",
        "|---|---:|",
        *[f"| {k} | {mb(v)} |" for k, v in sizes.items()],
        "",
        f"Training images/s, `small_cnn` on RGB, batch 64, {args.steps} timed steps after 2, a `DataLoader` "
        f"(no workers) over `StaticDataset` in storage order, 2 torch threads; and the time to load "
        f"the training split ({n_train} samples) into memory with `load_tensors` (the path `cropland "
        "train` takes):",
        "",
        "| source | training images/s | load the training split |",
        "|---|---:|---:|",
        f"| release shards (Parquet, PNG decoding) | {rates['shards, streamed']:,.0f} | {loads['shards']:.1f} s |",
        f"| packed (`.npy` memory map, uint8) | {rates['packed']:,.0f} | {loads['packed']:.1f} s |",
    ]
    print("\n".join(lines))
    if not args.no_doc:
        write_section("publish_speed", "\n".join(lines))


if __name__ == "__main__":
    main()
