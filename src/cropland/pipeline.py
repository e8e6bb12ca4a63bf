"""The whole build, stage by stage: extract -> split -> export -> statistics and card.

Each stage reads what the previous one wrote to the output folder, so any stage can be
rerun alone, and an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from cropland.config import BuildConfig
from cropland.dataset import (
    POINTS_FILE,
    REPORT_FILE,
    SPLITS_FILE,
    Splits,
    read_splits,
    write_splits,
)
from cropland.errors import DatasetError
from cropland.extraction.runner import BuildSummary, extract
from cropland.io import folder_lock
from cropland.points.table import read_points
from cropland.split import extend_splits, make_splits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """Where a build's outputs are, and how its tasks ended."""

    output: Path
    extraction: BuildSummary

    @property
    def report(self) -> Path:
        return self.output / REPORT_FILE


def split_dataset(cfg: BuildConfig) -> Splits:
    """Make the dataset's splits, or reuse them so reruns keep every point in its split
    (points new to a rerun, such as those of an added year, get splits of their own)."""
    path = Path(cfg.output) / SPLITS_FILE
    points = read_points(Path(cfg.output) / POINTS_FILE)
    points = points[points["year"].isin(cfg.years)]
    known = read_splits(path) if path.exists() else None
    patch = (cfg.patch_size * cfg.resolution, cfg.crs)  # points whose patches overlap: one split
    splits = extend_splits(known, points, *patch) if known else make_splits(points, cfg.splits, cfg.seed, *patch)
    if splits is not known:
        if known:
            log.info("%d new points split; the %d known points keep their splits",
                     len(splits.assignments) - len(known.assignments), len(known.assignments))
        write_splits(splits, path)
    return splits


def _nothing_extracted(summary: BuildSummary) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items()))
    if summary.failures:
        task, reason = summary.failures[0]
        return (f"no sample could be extracted ({counts}; first failure, {task}: {reason}); fix "
                "the cause and run the same command with --retry-failed")
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.empty_reasons.items()))
    return (f"no sample could be extracted ({counts}: {why}); check the source, its dates and "
            "the points (`cropland check` tries one)")


def build_dataset(
    cfg: BuildConfig,
    executor: Executor | None = None,
    workers: int = 1,
    retry_failed: bool = False,
    progress: bool = True,
) -> BuildResult:
    """Run every stage of a build described by ``cfg``, holding the output folder's lock."""
    from cropland.card import write_card
    from cropland.export.release import export_release
    from cropland.stats import scan_dataset, write_report

    with folder_lock(cfg.output):
        summary = extract(cfg, executor, workers, retry_failed, progress)
        if summary.failures:
            log.warning("%d samples failed; rerun with --retry-failed (first: %s)",
                        len(summary.failures), summary.failures[0])
        if not summary.counts.get("done"):
            raise DatasetError(_nothing_extracted(summary))
        splits = split_dataset(cfg)
        export_release(cfg.output, cfg, splits, workers=max(workers, 1))
        samples = scan_dataset(cfg.output)
        write_report(cfg.output, samples)
        write_card(cfg.output, samples)
    return BuildResult(Path(cfg.output), summary)
