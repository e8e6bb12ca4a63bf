"""Run the extraction stage of a build: resumable, with a progress bar, on any executor.

Jobs run in this process, in a process pool, or on anything with the
:class:`concurrent.futures.Executor` interface (a ``dask.distributed`` client's
``get_executor()`` too). Workers write sample files atomically and return results; only
this process writes the manifest.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cropland.config import BuildConfig, dump_config
from cropland.dataset import CONFIG_FILE, POINTS_FILE, tif_path
from cropland.errors import ConfigError, CredentialsError, PointsError
from cropland.extraction.extract import Job, Target, plan_jobs, run_job, samples_of
from cropland.extraction.manifest import Manifest, TaskResult, task_id
from cropland.io import check_writable, folder_lock, remove_temporaries, write_text_atomic
from cropland.parallel import process_pool
from cropland.points.table import outside_canada, read_points, validate_points, write_points
from cropland.sources import Source, make_source

log = logging.getLogger(__name__)
MANIFEST_FILE = "manifest.sqlite"


@dataclass(frozen=True)
class BuildSummary:
    """Task counts after a build, and the failures with their reasons."""

    counts: dict[str, int]
    failures: list[tuple[str, str]]
    empty_reasons: dict[str, int] = field(default_factory=dict)  # no coverage, all cloudy, no mask

    @property
    def complete(self) -> bool:
        return not self.counts.get("pending") and not self.counts.get("failed")


def load_build_points(cfg: BuildConfig) -> pd.DataFrame:
    """The points table of a build: read from ``points.path``, or made by the simulator."""
    if cfg.points.path is not None:
        return read_points(cfg.points.path)
    source = make_source(cfg)
    if not hasattr(source, "synthetic_points"):
        raise ConfigError("points.synthetic_per_class needs source.kind: simulator; "
                          "give points.path for other sources")
    return source.synthetic_points(cfg.points.synthetic_per_class, cfg.years,
                                   cfg.points.synthetic_clusters)


#: Settings the files of a build embody: a rerun into the same folder may not change them.
FIXED_SETTINGS: tuple[str, ...] = (
    "patch_size",
    "resolution",
    "crs",
    "resampling",
    "indices",
    "render",
    "splits",
    "seed",
    "source.kind",
    "source.level",
)


#: Lists a rerun may extend but not shorten: the folder holds samples of every value listed.
GROWING_SETTINGS: tuple[str, ...] = ("years", "months", "classes")


def check_unchanged(cfg: BuildConfig, saved: Path) -> None:
    """Refuse a rerun whose configuration changes a setting the existing files were made with,
    or drops years, months or classes the folder holds samples of."""
    if not saved.exists():
        return
    before, now = yaml.safe_load(saved.read_text("utf-8")) or {}, cfg.model_dump(mode="json")

    def get(doc: Any, key: str) -> Any:
        for part in key.split("."):
            doc = doc.get(part) if isinstance(doc, dict) else None
        return doc

    changed = [f"{k}: {get(before, k)} -> {get(now, k)}" for k in FIXED_SETTINGS if get(before, k) != get(now, k)]
    if changed:
        raise ConfigError(
            f"{saved.parent} was built with other settings ({'; '.join(changed)}), so its files would "
            "not match: restore them or build into a new output folder (to re-render PNGs, edit "
            f"{saved} and run `cropland export {saved.parent} --overwrite`)")
    dropped = [f"{k} {sorted(set(get(before, k) or []) - set(get(now, k)))}" for k in GROWING_SETTINGS
               if set(get(before, k) or []) - set(get(now, k))]
    if dropped:
        raise ConfigError(
            f"{saved.parent} holds samples of {', '.join(dropped)}, which the config no longer "
            "lists, so the dataset would not be what its config says: list them again, or build "
            "into a new output folder")


def prepare(cfg: BuildConfig) -> pd.DataFrame:
    """Write the points table and the resolved config into the output folder (held locked)."""
    out = Path(cfg.output)
    with folder_lock(out):
        if n := remove_temporaries(out):  # partial writes of an interrupted run
            log.info("removed %d temporary files of an interrupted run", n)
        check_unchanged(cfg, out / CONFIG_FILE)
        if cfg.future_years:
            log.warning("years %s are in the future: the simulator invents their imagery "
                        "(synthetic pixels, not a forecast)", cfg.future_years)
        points = _build_points(cfg, out / POINTS_FILE)
        write_text_atomic(out / CONFIG_FILE, dump_config(cfg))
        return points


def _build_points(cfg: BuildConfig, points_file: Path) -> pd.DataFrame:
    """The build's points table, written on the first run; a resumed build keeps the points it
    started with, and years new to the config are added."""
    if not points_file.exists():
        points = validate_points(load_build_points(cfg))
        _warn_outside_canada(points)
        write_points(points, points_file)
        return points
    points = read_points(points_file)
    new_years = sorted(set(cfg.years) - set(points["year"]))
    if not new_years:
        log.info("resuming with the points table %s (the config's points are not reread)", points_file)
        return points
    configured = load_build_points(cfg)
    added = configured[configured["year"].isin(new_years)]
    try:
        points = validate_points(pd.concat([points, added]), str(points_file))
    except PointsError as e:
        raise PointsError(f"cannot add years {new_years} to this build: {e}; the configured points "
                          "disagree with the build's points.csv, so build them into a new output folder") from None
    _warn_outside_canada(added)
    log.info("adding %d points-years of %s to %s", len(added), new_years, points_file)
    write_points(points, points_file)
    return points


def _warn_outside_canada(points: pd.DataFrame) -> None:
    abroad = outside_canada(points)
    if len(abroad):
        where = ", ".join(f"{p} at ({x:.4f}, {y:.4f})" for p, x, y in
                          abroad[["point_id", "lon", "lat"]].head(10).itertuples(index=False))
        log.warning("%d points lie outside Canada's provinces: %s%s; no crop inventory labels "
                    "them, check their lon/lat (WGS84 degrees, lon first)", len(abroad), where,
                    ", ..." if len(abroad) > 10 else "")


def extract(
    cfg: BuildConfig,
    executor: Executor | None = None,
    workers: int = 1,
    retry_failed: bool = False,
    progress: bool = True,
) -> BuildSummary:
    """Extract every pending sample of ``cfg`` (resuming an interrupted build), and the
    ``empty`` ones again when the source's contents changed since they ended."""
    out = Path(cfg.output)
    source = make_source(cfg)
    state = source.fingerprint()  # a bad source fails here, before any job
    with folder_lock(out):
        points = prepare(cfg)
        targets = samples_of(points, cfg)
        with Manifest(out / MANIFEST_FILE) as manifest:
            manifest.add(t.sample for t in targets)
            if n := manifest.reset_missing(out):
                log.warning("%d finished samples lost their file; redoing them", n)
            todo = manifest.todo(retry_failed, state)
            written = _already_written(targets, todo, out)
            manifest.record(written)  # files that an interrupted run wrote but did not record
            todo -= {r.task_id for r in written}
            jobs = plan_jobs(targets, todo)
            log.info("%d samples to extract in %d jobs; %d others already ended (done, empty%s)",
                     len(todo), len(jobs), len(targets) - len(todo),
                     "" if retry_failed else " or failed: rerun with --retry-failed")
            with _progress(progress) as bar:
                task = bar.add_task("extracting", total=len(todo))
                for results in _execute(jobs, cfg, source, executor, workers):
                    manifest.record(results, state)
                    bar.advance(task, len(results))
            return BuildSummary(manifest.counts(), manifest.failures(), manifest.empty_reasons())


def _already_written(targets: list[Target], todo: set[str], out: Path) -> list[TaskResult]:
    """Pending tasks whose sample file exists: complete, since files are written atomically."""
    results = []
    for t in targets:
        path = tif_path(out, t.sample)
        if task_id(t.sample) in todo and path.exists():
            results.append(TaskResult(task_id(t.sample), "done", str(path.relative_to(out))))
    return results


def _execute(jobs: list[Job], cfg: BuildConfig, source: Source, executor: Executor | None,
             workers: int):
    if executor is None and workers <= 1:
        for job in jobs:
            yield _guarded(source, job, cfg)
        return
    own = executor is None
    executor = executor or process_pool(workers)
    try:
        futures = [executor.submit(_run_remote, job, cfg) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        if own:
            executor.shutdown(cancel_futures=True)


def _guarded(source: Source, job: Job, cfg: BuildConfig) -> list[TaskResult]:
    """Run a job; a failure marks its tasks failed (with the reason) and the build goes on,
    unless every job would fail alike (no credentials, a full or read-only disk): then the
    build stops, in one line."""
    try:
        return run_job(source, job, cfg)
    except CredentialsError:
        raise
    except Exception as e:  # noqa: BLE001 (recorded in the manifest, logged)
        check_writable(cfg.output)  # raises what a full or read-only disk does
        reason = f"{type(e).__name__}: {e}"
        log.warning("job %s-%02d failed: %s", job.year, job.month, reason)
        log.debug("job %s-%02d failed", job.year, job.month, exc_info=True)
        return [TaskResult(task_id(t.sample), "failed", reason=reason) for t in job.targets]


def _run_remote(job: Job, cfg: BuildConfig) -> list[TaskResult]:
    return _guarded(_cached_source(cfg.model_dump_json()), job, cfg)


@cache
def _cached_source(cfg_json: str) -> Source:
    return make_source(BuildConfig.model_validate_json(cfg_json))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), disable=not enabled, transient=False,
    )
