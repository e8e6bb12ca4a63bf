"""Export the release from the sample GeoTIFFs: the PNG tree and the raw zips.

Resumable: outputs that already exist are skipped (every file is written atomically, so an
existing file is complete). Many samples are rendered in a process pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rich.progress import Progress

from cropland.config import BuildConfig, RenderConfig
from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.dataset import SPLIT_NAMES, DatasetFolder, Splits, png_path, raw_zip_path
from cropland.export.geotiff import load_sample
from cropland.export.png import write_pngs_of
from cropland.export.rawzip import write_raw_zip_of

log = logging.getLogger(__name__)

#: Below this many samples to export, a process pool costs more than it saves.
POOL_MIN_SAMPLES = 200


@dataclass(frozen=True)
class _Job:
    """What is missing for one sample."""

    tif: Path
    split: str
    png_types: tuple[str, ...]
    zip_path: Path | None


@dataclass(frozen=True)
class ExportSummary:
    """What an export did."""

    samples: int  # sample GeoTIFFs found
    pngs_written: int
    zips_written: int
    up_to_date: int  # samples whose outputs all existed already
    stale_removed: int  # PNGs removed from a split their point is no longer in


def _plan(
    root: Path, sample: SampleName, tif: Path, split: str, cfg: BuildConfig, overwrite: bool
) -> _Job:
    types: tuple[str, ...] = ()
    if cfg.export.png:
        types = tuple(
            t for t in IMAGE_TYPES if overwrite or not png_path(root, sample, t, split).exists()
        )
    zip_path = raw_zip_path(root, sample) if cfg.export.raw_zip else None
    if zip_path is not None and zip_path.exists() and not overwrite:
        zip_path = None
    return _Job(tif, split, types, zip_path)


def _remove_stale(root: Path, sample: SampleName, split: str) -> int:
    """Delete PNGs of the sample in other splits (left by an earlier, different split)."""
    removed = 0
    for other in SPLIT_NAMES:
        if other == split:
            continue
        for image_type in IMAGE_TYPES:
            path = png_path(root, sample, image_type, other)
            if path.exists():
                path.unlink()
                removed += 1
    return removed


def _run_job(job: _Job, root: Path, render: RenderConfig) -> tuple[int, int]:
    """Write what is missing for one sample, reading its GeoTIFF once."""
    sample, _ = SampleName.parse(job.tif.name)
    loaded = load_sample(job.tif)
    pngs = write_pngs_of(loaded.data, sample, root, job.split, render, job.png_types)
    if job.zip_path is not None:
        write_raw_zip_of(loaded, job.tif.stem, job.zip_path)
    return len(pngs), int(job.zip_path is not None)


def _default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def _results(
    jobs: list[_Job], root: Path, render: RenderConfig, workers: int
) -> Iterator[tuple[int, int]]:
    run = partial(_run_job, root=root, render=render)
    if workers <= 1 or len(jobs) < POOL_MIN_SAMPLES:
        yield from map(run, jobs)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(run, jobs, chunksize=16)


def export_release(
    out_dir: str | Path,
    cfg: BuildConfig,
    splits: Splits,
    *,
    overwrite: bool = False,
    workers: int | None = None,
) -> ExportSummary:
    """Write the PNG tree and the raw zips for every sample GeoTIFF in ``OUT/tif``.

    Args:
        out_dir: the dataset folder ``OUT``.
        cfg: the build configuration (``export`` says what to write, ``render`` how).
        splits: the split of each point.
        overwrite: rewrite outputs that exist instead of skipping them.
        workers: processes for rendering (default: the available cores, at most 8). A
            pool is used from ``POOL_MIN_SAMPLES`` samples to export on; its processes are
            spawned, so a script calling this needs the ``if __name__ == "__main__":`` guard.
    """
    root = Path(out_dir)
    jobs, stale, samples = [], 0, 0
    for sample, tif in DatasetFolder(root).samples():
        samples += 1
        split = splits.split_of(sample.point_id)
        stale += _remove_stale(root, sample, split) if cfg.export.png else 0
        job = _plan(root, sample, tif, split, cfg, overwrite)
        if job.png_types or job.zip_path is not None:
            jobs.append(job)
    pngs = zips = 0
    with Progress(transient=True) as progress:
        task = progress.add_task("exporting PNGs and raw zips", total=len(jobs))
        for n_png, n_zip in _results(jobs, root, cfg.render, workers or _default_workers()):
            pngs, zips = pngs + n_png, zips + n_zip
            progress.advance(task)
    if stale:
        log.warning("removed %d PNGs from splits their point is no longer in", stale)
    summary = ExportSummary(samples, pngs, zips, samples - len(jobs), stale)
    log.info("export of %s: %s", root, summary)
    return summary
