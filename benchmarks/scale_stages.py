"""Statistics, pack and export of a large dataset: time and peak memory, one process per stage.

    python benchmarks/synthetic_release.py /data/r78k                 # 78,536 images, 64 x 64
    python benchmarks/scale_stages.py /data/r78k --workers 2
    python benchmarks/synthetic_release.py /data/r785k --images 785360 --patch-size 16
    python benchmarks/scale_stages.py /data/r785k --workers 2

Each stage runs in a child process of its own, which reports its wall time, its CPU time
(worker processes included) and the peak resident memory of itself and of its largest worker
process (VmHWM, polled each second: a spawned worker's ``ru_maxrss`` would count the parent's
pages it holds between its fork and its exec). ``export`` starts from scratch (the PNG tree and
raw zips are deleted first, and afterwards unless ``--keep``) and is timed again with nothing
left to do; ``pack`` (all 18 channels, float16) writes beside the dataset and is deleted
afterwards unless ``--keep``.
Writes the section "Stages at scale: N images" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _doc import provenance, rss_peak, write_section  # noqa: E402

STAGES = ("stats", "pack", "export")
GIB = 2**30


def disk_usage(root: Path) -> int:
    """Bytes allocated on disk under ``root`` (blocks, as ``du`` counts)."""
    total = 0
    for folder, _, files in os.walk(root):
        total += sum(os.lstat(os.path.join(folder, f)).st_blocks * 512 for f in files)
    return total


class WorkerPeak:
    """The largest peak resident set (VmHWM) of this process's children, polled each second."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak

    def _poll(self) -> None:
        me = os.getpid()
        while not self._stop.wait(1.0):
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue  # the process ended meanwhile
                if parent == me:
                    self.peak = max(self.peak, rss_peak(int(stat.parent.name)))


def release_outputs(dataset: Path) -> list[Path]:
    """The export's outputs: the PNG tree (``{year}/``) and ``raw/``."""
    return [p for p in dataset.iterdir() if p.is_dir() and (p.name.isdigit() or p.name == "raw")]


def packed_folder(dataset: Path) -> Path:
    return dataset.parent / f"{dataset.name}-packed"


def run_stage(stage: str, dataset: Path, workers: int, zips: bool = True) -> dict:
    """Run one stage in this process; return its figures."""
    from cropland.dataset import DatasetFolder

    folder = DatasetFolder(dataset)
    start, workers_peak = time.perf_counter(), WorkerPeak()
    figures: dict = {}
    if stage == "stats":
        from cropland.card import write_card
        from cropland.stats import scan_dataset, write_report

        samples = scan_dataset(dataset, workers=workers)
        write_report(dataset, samples)
        write_card(dataset, samples)
        figures["work"] = f"{len(samples):,} samples: tags, report, charts, card"
    elif stage == "pack":
        from cropland.data.pack import pack

        manifest = json.loads(pack(dataset, packed_folder(dataset), "all", source="tif", workers=workers).read_text())
        shapes = [s["shape"] for s in manifest["splits"].values()]
        figures["work"] = (f"{sum(s[0] for s in shapes):,} samples x {shapes[0][1]} channels x "
                           f"{shapes[0][2]} x {shapes[0][3]} float16, "
                           f"{disk_usage(packed_folder(dataset)) / GIB:.1f} GiB")
    elif stage in ("export", "export-rerun"):
        from cropland.export.release import export_release

        cfg = folder.config()
        cfg.export.raw_zip = cfg.export.raw_zip and zips
        s = export_release(dataset, cfg, folder.splits(), workers=workers)
        figures["work"] = (f"{s.samples:,} samples: {s.pngs_written:,} PNGs and {s.zips_written:,} "
                           f"zips written, {s.up_to_date:,} up to date")
        if stage == "export":
            size = sum(disk_usage(p) for p in release_outputs(dataset))
            figures["work"] += f", {size / GIB:.1f} GiB"
    else:
        raise SystemExit(f"unknown stage {stage}")
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    figures.update(
        wall=time.perf_counter() - start,
        cpu=own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        rss=own.ru_maxrss * 1024, worker_rss=workers_peak.stop(),
    )
    return figures


def measure(stage: str, dataset: Path, workers: int, zips: bool = True) -> dict:
    """Run a stage in a child process (so that its peak memory is its own)."""
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, str(dataset), "--child", stage,
                          "--workers", str(workers), *([] if zips else ["--no-zips"])],
                         check=True, capture_output=True, text=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["load"] = f"{load:.1f} / {os.getloadavg()[0]:.1f}"
    print(stage, figures, flush=True)
    return figures


def row(name: str, f: dict) -> str:
    worker = f"{f['worker_rss'] / GIB:.2f} GiB" if f["worker_rss"] else "-"
    return (f"| {name} | {f['work']} | {f['wall']:,.0f} s | {f['cpu']:,.0f} s | "
            f"{f['rss'] / GIB:.2f} GiB | {worker} | {f['load']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the packed arrays and the export")
    parser.add_argument("--no-zips", action="store_true",
                        help="export the PNG tree only (where the raw zips do not fit on the disk)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dataset = args.dataset.resolve()
    if args.child:
        print(json.dumps(run_stage(args.child, dataset, args.workers, not args.no_zips)))
        return

    from cropland.dataset import DatasetFolder

    folder = DatasetFolder(dataset)
    cfg, images = folder.config(), folder.count_samples()
    tif_bytes = disk_usage(dataset / "tif")
    rows = []
    if "stats" in args.stages:
        rows.append(row("statistics", measure("stats", dataset, args.workers)))
    if "pack" in args.stages:
        shutil.rmtree(packed_folder(dataset), ignore_errors=True)
        rows.append(row("pack", measure("pack", dataset, args.workers)))
        if not args.keep:
            shutil.rmtree(packed_folder(dataset))
    if "export" in args.stages:
        for path in release_outputs(dataset):
            shutil.rmtree(path)
        what = "PNG tree only" if args.no_zips else "PNG tree, raw zips"
        zips = not args.no_zips
        rows.append(row(f"export ({what})", measure("export", dataset, args.workers, zips)))
        rows.append(row("export again (nothing to do)",
                        measure("export-rerun", dataset, args.workers, zips)))
        if not args.keep:
            for path in release_outputs(dataset):
                shutil.rmtree(path)
    command = (f"python benchmarks/scale_stages.py DATASET --workers {args.workers}"
               + ("" if args.stages == list(STAGES) else " --stages " + " ".join(args.stages))
               + (" --no-zips" if args.no_zips else ""))
    text = "\n".join([
        f"## Stages at scale: {images:,} images",
        "",
        provenance(command),
        f"DATASET: {images:,} images in {cfg.patch_size} x {cfg.patch_size} px sample GeoTIFFs "
        f"(19 bands float32, DEFLATE; {tif_bytes / GIB:.1f} GiB), written by "
        f"`python benchmarks/synthetic_release.py DATASET --images {images}"
        f"{'' if cfg.patch_size == 64 else f' --patch-size {cfg.patch_size}'}`. "
        "Each stage runs in a process of its own; CPU time counts its worker processes; peak "
        "memory is the resident set of the stage's process (ru_maxrss) and of its largest "
        "worker (VmHWM, polled each second); load is the 1-minute load average before / after "
        "the stage (the machine was shared with other jobs: wall times are upper bounds).",
        *([] if cfg.patch_size >= 64 else [
            f"Patches of {cfg.patch_size} x {cfg.patch_size} px keep the images, points, files "
            "and folders of this size within this machine's disk: the per-file costs "
            "(listing, opening, tags, one PNG per image type) are those of the published "
            f"format, the per-pixel costs (decompression, rendering, the packed array) "
            f"{(64 / cfg.patch_size) ** 2:.0f} times smaller than at 64 x 64."]),
        *([] if not args.no_zips else [
            "The export writes the PNG tree only: the raw zips (19 single-band GeoTIFFs per "
            "image) would not fit on this machine's disk beside it; their cost per image is "
            "measured at the published size."]),
        "",
        "| stage | work | wall | CPU | peak memory | largest worker | load |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print(text)
    if not args.no_write:
        write_section(f"scale_stages_{images}", text)


if __name__ == "__main__":
    main()
