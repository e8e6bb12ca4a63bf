"""Export the release from the sample GeoTIFFs: the PNG tree and the raw zips.

Resumable: outputs that already exist are skipped (every file is written atomically, so an
existing file is complete; one damaged since, a truncated PNG or zip, is written again).
Samples are planned and rendered as a stream, in a process pool when there are many.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
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
from cropland.io import folder_lock, remove_temporaries
from cropland.parallel import default_workers, imap_bounded

log = logging.getLogger(__name__)

#: Below this many samples, a process pool costs more than it saves.
POOL_MIN_SAMPLES = 200
#: Samples sent to a worker at once.
CHUNK = 16


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


class _Listings:
    """Which output files exist, from one listing per folder instead of a lookup per file.

    Samples come sorted by year and class, so only the folders of the current year and class
    are kept: memory stays that of one class-year, whatever the dataset's size.
    """

    def __init__(self) -> None:
        self.group: tuple[int, str] | None = None
        self.names: dict[Path, set[str]] = {}

    def start(self, sample: SampleName) -> None:
        if (sample.year, sample.label) != self.group:
            self.group, self.names = (sample.year, sample.label), {}

    def exists(self, path: Path) -> bool:
        names = self.names.get(path.parent)
        if names is None:
            try:
                names = {n for n in os.listdir(path.parent) if not n.startswith(".")}
            except FileNotFoundError:
                names = set()
            self.names[path.parent] = names
        return path.name in names

    def remove(self, path: Path) -> None:
        path.unlink()
        self.names[path.parent].discard(path.name)


#: How a whole file ends: a PNG with its IEND chunk, a zip with its end of central directory
#: (22 bytes, no comment: as written here).
_ENDINGS = {".png": (12, b"\x00\x00\x00\x00IEND\xaeB`\x82"), ".zip": (22, b"PK\x05\x06")}


def _whole(path: Path) -> bool:
    """Whether an output file ends as a complete one does (a truncated copy does not)."""
    size, ending = _ENDINGS[path.suffix]
    try:
        with path.open("rb") as f:
            f.seek(-size, os.SEEK_END)
            whole = f.read(size).startswith(ending)
    except OSError:  # shorter than its ending
        whole = False
    if not whole:
        log.warning("%s is truncated or damaged: writing it again", path)
    return whole


def _plan(root: Path, sample: SampleName, tif: Path, split: str, cfg: BuildConfig,
          overwrite: bool, listings: _Listings) -> _Job:
    def done(path: Path) -> bool:
        return not overwrite and listings.exists(path) and _whole(path)

    types: tuple[str, ...] = ()
    if cfg.export.png:
        types = tuple(t for t in IMAGE_TYPES if not done(png_path(root, sample, t, split)))
    zip_path = raw_zip_path(root, sample) if cfg.export.raw_zip else None
    if zip_path is not None and done(zip_path):
        zip_path = None
    return _Job(tif, split, types, zip_path)


def _remove_stale(root: Path, sample: SampleName, split: str, listings: _Listings) -> int:
    """Delete PNGs of the sample in other splits (left by an earlier, different split)."""
    removed = 0
    for other in SPLIT_NAMES:
        if other == split:
            continue
        for image_type in IMAGE_TYPES:
            path = png_path(root, sample, image_type, other)
            if listings.exists(path):
                listings.remove(path)
                removed += 1
    return removed


def _run_chunk(chunk: tuple[list[_Job], int], root: Path, render: RenderConfig
               ) -> tuple[int, int, int]:
    """Write what is missing for a few samples, reading each GeoTIFF once; return the PNGs and
    zips written and the samples the chunk stands for (those up to date included)."""
    jobs, planned = chunk
    pngs = zips = 0
    for job in jobs:
        sample, _ = SampleName.parse(job.tif.name)
        loaded = load_sample(job.tif)
        pngs += len(write_pngs_of(loaded.data, sample, root, job.split, render, job.png_types))
        if job.zip_path is not None:
            write_raw_zip_of(loaded, job.tif.stem, job.zip_path)
            zips += 1
    return pngs, zips, planned


def export_release(
    out_dir: str | Path,
    cfg: BuildConfig,
    splits: Splits,
    *,
    overwrite: bool = False,
    workers: int | None = None,
) -> ExportSummary:
    """Write the PNG tree and the raw zips for every sample GeoTIFF in ``OUT/tif``.

    Samples are planned and exported as a stream: time grows linearly with the samples and
    memory does not (the work in flight is a few chunks of samples).

    Args:
        out_dir: the dataset folder ``OUT``.
        cfg: the build configuration (``export`` says what to write, ``render`` how).
        splits: the split of each point.
        overwrite: rewrite outputs that exist instead of skipping them.
        workers: processes for rendering (default: the available cores, at most 8). A
            pool is used from ``POOL_MIN_SAMPLES`` samples on; its processes are spawned,
            so a script calling this needs the ``if __name__ == "__main__":`` guard.

    The folder is held locked (:func:`cropland.io.folder_lock`) while it is written.
    """
    root = Path(out_dir)
    with folder_lock(root):
        remove_temporaries(root)  # partial files of an interrupted export
        return _export(root, cfg, splits, overwrite, workers)


def _export(
    root: Path, cfg: BuildConfig, splits: Splits, overwrite: bool, workers: int | None
) -> ExportSummary:
    folder = DatasetFolder(root)
    total = folder.count_samples()
    count = {"up_to_date": 0, "stale": 0}

    def chunks() -> Iterator[tuple[list[_Job], int]]:
        listings, jobs, planned = _Listings(), [], 0
        for sample, tif in folder.samples():
            listings.start(sample)
            split = splits.split_of(sample.point_id)
            count["stale"] += _remove_stale(root, sample, split, listings) if cfg.export.png else 0
            job = _plan(root, sample, tif, split, cfg, overwrite, listings)
            if job.png_types or job.zip_path is not None:
                jobs.append(job)
            else:
                count["up_to_date"] += 1
            planned += 1
            if len(jobs) == CHUNK or planned == 1024:
                yield jobs, planned
                jobs, planned = [], 0
        if planned:
            yield jobs, planned

    pngs = zips = 0
    workers = 1 if total < POOL_MIN_SAMPLES else (workers or default_workers())
    results = imap_bounded(partial(_run_chunk, root=root, render=cfg.render), chunks(), workers)
    with Progress(transient=True) as progress:
        task = progress.add_task("exporting PNGs and raw zips", total=total)
        for n_png, n_zip, planned in results:
            pngs, zips = pngs + n_png, zips + n_zip
            progress.advance(task, planned)
    if count["stale"]:
        log.warning("removed %d PNGs from splits their point is no longer in", count["stale"])
    summary = ExportSummary(total, pngs, zips, count["up_to_date"], count["stale"])
    log.info("export of %s: %s", root, summary)
    return summary

