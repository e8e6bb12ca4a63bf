"""Time the release export (PNGs + raw zips) and the statistics of a built dataset.

Usage: ``python benchmarks/export_speed.py DATASET [--workers 1 2]``, e.g. on the output of
``cropland demo``. The dataset is copied to a temporary folder (its GeoTIFFs, config and
splits), exported there from scratch once per worker count, then its report and card are
written. The figures replace the "Export and statistics" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cropland.card import write_card
from cropland.dataset import CONFIG_FILE, SPLITS_FILE, DatasetFolder
from cropland.export.release import export_release
from cropland.stats import scan_dataset, write_report

sys.path.insert(0, str(Path(__file__).parent))
from _doc import provenance, write_section  # noqa: E402


def _fresh_copy(dataset: Path, work: Path) -> Path:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(dataset / "tif", out / "tif")
    for name in (CONFIG_FILE, SPLITS_FILE):
        shutil.copy(dataset / name, out / name)
    return out


class Timer:
    """Wall time and CPU time (this process and its finished children) of a block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, self._cpu() - self.cpu

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def cells(self) -> str:
        return f"{self.wall:.1f} s | {self.cpu:.1f} s"


def measure(dataset: Path, workers: list[int]) -> list[str]:
    """Run the timings; return the Markdown lines of the results table."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in workers:
            out = _fresh_copy(dataset, Path(tmp))
            cfg, splits = DatasetFolder(out).config(), DatasetFolder(out).splits()
            with Timer() as timer:
                summary = export_release(out, cfg, splits, workers=n)
            rows.append(f"| export, {n} worker(s) | {summary.samples} samples, "
                        f"{summary.pngs_written} PNGs, {summary.zips_written} zips | "
                        f"{timer.cells()} |")
            with Timer() as timer:
                rerun = export_release(out, cfg, splits, workers=n)
            rows.append(f"| rerun (nothing to do), {n} worker(s) | {rerun.up_to_date} up to "
                        f"date | {timer.cells()} |")
        with Timer() as timer:
            samples = scan_dataset(out)
            write_report(out, samples)
            write_card(out, samples)
        rows.append(f"| statistics: scan tags, report, charts, card | {len(samples)} samples | "
                    f"{timer.cells()} |")
    return rows


def write_doc(rows: list[str], command: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md."""
    section = "\n".join([
        "## Export and statistics",
        "",
        provenance(command),
        "DATASET is the output of `cropland demo` (64 x 64 patches, PNGs and raw zips on). "
        "Wall-clock figures are upper bounds when the machine is shared; CPU time (user + "
        "system, worker processes included) does not depend on the load; on idle cores the "
        "wall time of an export approaches its CPU time divided by the workers.",
        "",
        "| step | work | wall time | CPU time |",
        "|---|---|---:|---:|",
        *rows,
    ])
    write_section("export_speed", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = measure(args.dataset, args.workers)
    print("\n".join(rows))
    workers = " ".join(map(str, args.workers))
    write_doc(rows, f"python benchmarks/export_speed.py DATASET --workers {workers}")


if __name__ == "__main__":
    main()
