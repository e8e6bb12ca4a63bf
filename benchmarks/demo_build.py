"""Time `cropland demo`, stage by stage: extract, split, export, statistics and card.

Usage: python benchmarks/demo_build.py [--workers 2] [--out DIR] [--no-write]
Writes the "Demo build" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _doc import provenance, write_section  # noqa: E402

from cropland.card import write_card  # noqa: E402
from cropland.config import demo_config_path, load_config  # noqa: E402
from cropland.export.release import export_release  # noqa: E402
from cropland.extraction.runner import extract  # noqa: E402
from cropland.pipeline import split_dataset  # noqa: E402
from cropland.stats import scan_dataset, write_report  # noqa: E402


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="keep the dataset here (default: a temporary folder)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(demo_config_path(), output=str((args.out or Path(tmp)).resolve()))
        rows, total = [], [0.0, 0.0]
        splits = None

        def stage(name, fn):
            wall, cpu = time.perf_counter(), cpu_seconds()
            result = fn()
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            rows.append(f"| {name} | {wall:.1f} | {cpu:.1f} |")
            total[0], total[1] = total[0] + wall, total[1] + cpu
            return result

        summary = stage("extract (simulate scenes, mask, median, GeoTIFFs)",
                        lambda: extract(cfg, workers=args.workers, progress=False))
        splits = stage("split", lambda: split_dataset(cfg))
        stage("export (PNG tree, raw zips)",
              lambda: export_release(cfg.output, cfg, splits, workers=args.workers))
        stage("statistics and card", lambda: (write_card(cfg.output, s := scan_dataset(cfg.output)),
                                              write_report(cfg.output, s)))
        rows.append(f"| **total** | **{total[0]:.1f}** | **{total[1]:.1f}** |")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts.items()))
    text = "\n".join([
        "## Demo build", "",
        provenance(f"python benchmarks/demo_build.py --workers {args.workers}"), "",
        f"The demo configuration (10 classes x 20 points, 2 years, 5 months, 64 x 64): {counts}.",
        "", "| stage | wall s | CPU s (all processes) |", "|---|---:|---:|", *rows,
    ])
    print(text)
    if not args.no_write:
        write_section("demo_build", text)


if __name__ == "__main__":
    main()
