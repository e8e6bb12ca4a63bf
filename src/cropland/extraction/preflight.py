"""The preflight check: a minute against the real source before an hours-long build.

:func:`preflight` resolves the source, searches one point (the one of the largest job) in
every configured month of every year, reads one scene on that point's patch and on a few
patches of its job, and returns a :class:`Preflight` report: items found per month after the
cloud filter (and before it), per-band reflectance percentiles against the physical range
0-1, the baseline offset as metadata and pixels give it, the read's time, requests and bytes,
and an estimate of the whole build. ``cropland check --config FILE`` prints it.

Every failure is a :class:`PreflightError`, one line saying what to fix: no network or DNS,
a refused connection, 401/403 (an expired Planetary Computer token too), S3 without
credentials or requester pays, an unknown collection, no item at all (and why: the cloud
filter, the dates or the area).

The estimate assumes every month of a year finds as many scenes as the sampled point's
months did on average; a job pays once per patch for its geometry (the first read of the
job's patches, less the same read again) and ``a + b x patches`` per scene read (``a`` and
``b`` from the repeated read of the job's patches and a read of one of them: time, requests,
bytes); jobs share the workers evenly.
"""

from __future__ import annotations

import calendar
import ctypes
import glob
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from cropland.config import BuildConfig
from cropland.core.bands import BAND_NAMES
from cropland.errors import CredentialsError, CroplandError
from cropland.extraction.extract import Job, Target, plan_jobs, samples_of
from cropland.extraction.manifest import task_id
from cropland.points.table import validate_points
from cropland.sources import Scene, Source, make_source
from cropland.sources.stac import StacSource

log = logging.getLogger(__name__)

#: Patches of the sampled job read together (the second read of the cost model).
JOB_PATCHES = 8
#: Share of a band's values below 0 or above 1 that the report flags.
FLAG_SHARE = 0.01


class PreflightError(CroplandError):
    """The source cannot serve the build: the message says why and what to fix."""


@dataclass(frozen=True)
class MonthItems:
    """Items over the sampled point in one month: kept by the cloud filter, and in all."""

    year: int
    month: int
    kept: int
    total: int


@dataclass(frozen=True)
class BandFigures:
    """Reflectance of one band over the clear pixels read: percentiles and out-of-range shares."""

    band: str
    p1: float
    p50: float
    p99: float
    negative: float
    above_one: float

    @property
    def flagged(self) -> bool:
        return self.negative > FLAG_SHARE or self.above_one > FLAG_SHARE


@dataclass(frozen=True)
class ReadCost:
    """Seconds, requests and bytes of one scene read."""

    seconds: float
    requests: int | None  # None where GDAL's network statistics are not available
    nbytes: int | None


@dataclass(frozen=True)
class Estimate:
    """The whole build: jobs, scene reads, requests, bytes and time with ``workers``."""

    jobs: int
    samples: int
    scene_reads: float
    requests: float | None
    nbytes: float | None
    seconds: float
    workers: int


@dataclass
class Preflight:
    """What :func:`preflight` found (``lines()`` is the printed report)."""

    source: str
    point: tuple[int, float, float]  # id, lon, lat
    months: list[MonthItems]
    search_seconds: float
    scene: str
    one_patch: ReadCost
    job_patches: int
    job_read: ReadCost
    setup_seconds: float  # per patch, once per job: the patch geometry of its first read
    bands: list[BandFigures]
    offset: dict
    estimate: Estimate
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        pid, lon, lat = self.point
        out = [f"source: {self.source}",
               f"point {pid} ({lon:.4f}, {lat:.4f}): items per month after the cloud filter "
               f"(before it), {self.search_seconds:.2f} s per search"]
        for year in sorted({m.year for m in self.months}):
            out.append(f"  {year}: " + "  ".join(f"{calendar.month_abbr[m.month]} {m.kept} "
                                                 f"({m.total})" for m in self.months
                                                 if m.year == year))
        out.append(f"read {self.scene}: 1 patch {_cost(self.one_patch)}; {self.job_patches} "
                   f"patches {_cost(self.job_read)}, plus {self.setup_seconds:.3f} s per patch "
                   "on a job's first read")
        out.append(f"DN offset: metadata {self.offset['metadata']:g}, pixels "
                   f"{'no evidence' if self.offset['pixels'] is None else format(self.offset['pixels'], 'g')}"
                   f", used {self.offset['used']:g}")
        out.append("reflectance over clear pixels:   p1     p50    p99   <0     >1")
        for b in self.bands:
            out.append(f"  {b.band:<4} {b.p1:8.4f} {b.p50:7.4f} {b.p99:7.4f} {b.negative:6.1%} "
                       f"{b.above_one:6.1%}{'  <- out of range' if b.flagged else ''}")
        e = self.estimate
        traffic = ("" if e.requests is None else
                   f", {e.requests:,.0f} requests, {_size(e.nbytes)}")
        out.append(f"estimate: {e.samples} samples in {e.jobs} jobs, {e.scene_reads:,.0f} scene "
                   f"reads{traffic}, {_duration(e.seconds)} with {e.workers} worker"
                   f"{'s' if e.workers > 1 else ''}")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def preflight(cfg: BuildConfig, workers: int = 1, points=None) -> Preflight:
    """Check ``cfg``'s source against one point per year; see the module docstring."""
    from cropland.extraction.runner import load_build_points

    source = None
    try:
        source = make_source(_fail_fast(cfg))
        _resolve(source)
        points = validate_points(load_build_points(cfg) if points is None else points)
        targets = samples_of(points, cfg)
        if not targets:
            raise PreflightError("no sample to build: no point of the configured years and "
                                 "classes; check points, years and classes")
        jobs = plan_jobs(targets, {task_id(t.sample) for t in targets})
        return _check(source, cfg, targets, jobs, max(1, workers))
    except CroplandError as e:
        if isinstance(e, PreflightError | CredentialsError):
            raise
        raise PreflightError(str(e)) from None
    except Exception as e:  # noqa: BLE001 (network and HTTP errors: one line each)
        raise PreflightError(explain(e, getattr(source, "url", None))) from None


def _fail_fast(cfg: BuildConfig) -> BuildConfig:
    """``cfg`` with two attempts per request: a check reports trouble, it does not wait it out."""
    from cropland.sources import source_kinds

    kind = source_kinds().get(cfg.source.kind)
    if kind is None or "retries" not in kind.Options.model_fields:
        return cfg
    quick = cfg.model_copy(deep=True)
    quick.source.options = {**quick.source.options, "retries": 2}
    return quick


def _resolve(source: Source) -> None:
    """Open a STAC API and find its collection (other sources have nothing to resolve)."""
    if not isinstance(source, StacSource):
        return
    client = source.client()
    ids = [c.id for c in client.get_collections()]
    if source.collection not in ids:
        raise PreflightError(f"collection {source.collection!r} not found at {source.url}; it "
                             f"has {', '.join(sorted(ids)) or 'none'}: set "
                             "source.options.collection")


def _check(source: Source, cfg: BuildConfig, targets: list[Target], jobs: list[Job],
           workers: int) -> Preflight:
    months, searches = [], []
    scenes_per_year: dict[int, tuple[Scene, int] | None] = {}
    sampled: dict[int, Job] = {}
    for year in cfg.years:
        year_jobs = [j for j in jobs if j.year == year]
        if not year_jobs:
            continue
        job = max(year_jobs, key=lambda j: len(j.targets))
        sampled[year] = job
        bbox = job.targets[0].grid.bounds_lonlat()
        for month in cfg.months:
            start = datetime(year, month, 1)
            end = start + timedelta(days=calendar.monthrange(year, month)[1])
            total = source.census(bbox, start, end)  # first: it opens the connection
            started = time.perf_counter()
            kept = source.search(bbox, start, end, cfg.source.max_scene_cloud)
            searches.append(time.perf_counter() - started)
            months.append(MonthItems(year, month, len(kept), len(total)))
            if kept and year not in scenes_per_year:
                scenes_per_year[year] = (kept[0], month)
        found = [m.kept for m in months if m.year == year]
        scenes_per_year.setdefault(year, None)
        log.info("%d: %s items per month", year, found)
    readable = [(y, v) for y, v in scenes_per_year.items() if v is not None]
    if not readable:
        raise PreflightError(_why_none(source, cfg, sampled, months))
    year, (scene, month) = readable[0]
    job = sampled[year]
    grids = [t.grid for t in job.targets[:JOB_PATCHES]]
    # a job pays once for its patches' geometry (the first scene read on them), then each
    # scene read costs a + b x patches: the same patches read again, and one of them
    # (warm reads at the faster of two: a busy machine slows single reads down)
    patches, cold = _timed_read(source, scene, grids)
    many, one = (min((_timed_read(source, scene, g)[1] for _ in range(2)),
                     key=lambda cost: cost.seconds) for g in (grids, grids[:1]))
    setup = max(0.0, cold.seconds - many.seconds) / len(grids)
    mean_kept = {y: float(np.mean([m.kept for m in months if m.year == y])) for y in sampled}
    estimate = _estimate(jobs, mean_kept, one, many, len(grids), float(np.mean(searches)),
                         setup, workers, len(targets))
    offset = (patches.offset.as_tag() if patches.offset is not None else
              {"metadata": scene.offset, "pixels": None, "used": scene.offset})
    bands = _band_figures(patches)
    warnings = [f"{b.band}: {b.negative:.1%} of the values below 0, {b.above_one:.1%} above 1"
                for b in bands if b.flagged]
    if offset["pixels"] is not None and offset["pixels"] != offset["metadata"]:
        warnings.append(f"{scene.id}: the metadata gives a DN offset of {offset['metadata']:g} "
                        f"but the pixels show {offset['pixels']:g}; the build uses the pixels'")
    for y in sampled:
        if mean_kept[y] == 0:
            warnings.append(f"{y}: no item under max_scene_cloud "
                            f"{cfg.source.max_scene_cloud:g} % at the sampled point in any month")
    t0 = job.targets[0]
    point = (t0.sample.point_id, *_lonlat(t0))
    return Preflight(_describe(source), point, months, float(np.mean(searches)), scene.id, one,
                     len(grids), many, setup, bands, offset, estimate, warnings)


def _timed_read(source: Source, scene, grids):
    with network_stats() as stats:
        started = time.perf_counter()
        patches = source.read(scene, grids)
        seconds = time.perf_counter() - started
    return patches, ReadCost(seconds, stats.get("requests"), stats.get("bytes"))


def _estimate(jobs: list[Job], mean_kept: dict[int, float], one: ReadCost, many: ReadCost,
              k: int, search_s: float, setup_s: float, workers: int, samples: int) -> Estimate:
    def linear(a: float, b: float, n: int) -> float:  # cost of a read of n patches
        slope = max(0.0, (b - a) / (k - 1)) if k > 1 else 0.0
        return a + slope * (n - 1)

    reads = seconds = requests = nbytes = 0.0
    for job in jobs:
        s, n = mean_kept.get(job.year, 0.0), len(job.targets)
        reads += s
        seconds += search_s + n * setup_s + s * linear(one.seconds, many.seconds, n)
        if (one.requests is not None and many.requests is not None
                and one.nbytes is not None and many.nbytes is not None):
            requests += 1 + s * linear(one.requests, many.requests, n)
            nbytes += s * linear(one.nbytes, many.nbytes, n)
    known = one.requests is not None
    return Estimate(len(jobs), samples, reads, requests if known else None,
                    nbytes if known else None, seconds / min(workers, max(1, len(jobs))), workers)


def _band_figures(patches) -> list[BandFigures]:
    figures = []
    clear = patches.clear
    for b, band in enumerate(BAND_NAMES):
        values = patches.reflectance[:, b][clear]
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        p1, p50, p99 = np.percentile(values, [1, 50, 99])
        figures.append(BandFigures(band, float(p1), float(p50), float(p99),
                                   float((values < 0).mean()), float((values > 1).mean())))
    return figures


def _why_none(source: Source, cfg: BuildConfig, sampled: dict[int, Job],
              months: list[MonthItems]) -> str:
    """Why no month of any year found an item: the cloud filter, the dates or the area."""
    total = sum(m.total for m in months)
    where = ", ".join(f"point {j.targets[0].sample.point_id} in {y}" for y, j in sampled.items())
    if total:
        return (f"no item under max_scene_cloud {cfg.source.max_scene_cloud:g} % ({total} items "
                f"over {where}, all cloudier): the cloud filter removed them all; raise "
                "source.max_scene_cloud or add months")
    if hasattr(source, "client"):
        return _why_none_stac(source, cfg, sampled)
    return f"no item at all over {where} in months {cfg.months}: check the source and the dates"


def _why_none_stac(source, cfg: BuildConfig, sampled: dict[int, Job]) -> str:
    client = source.client()
    year, job = next(iter(sampled.items()))
    bbox = list(job.targets[0].grid.bounds_lonlat())
    dates = f"{year}-{min(cfg.months):02d}-01T00:00:00Z/{max(cfg.years)}-12-31T23:59:59Z"
    elsewhere = list(client.search(collections=[source.collection], bbox=bbox,
                                   max_items=1).items_as_dicts())
    extent = _temporal_extent(client, source.collection)
    if elsewhere:
        return (f"no item in the configured years and months over the points, but "
                f"{source.collection} has items over them at other dates (e.g. "
                f"{elsewhere[0]['properties'].get('datetime')}; collection extent {extent}): "
                "check years and months")
    anywhere = list(client.search(collections=[source.collection], datetime=dates,
                                  max_items=1).items_as_dicts())
    if anywhere:
        return (f"no item of {source.collection} over the points (e.g. point "
                f"{job.targets[0].sample.point_id}) although it has items in those dates "
                "elsewhere: the area is outside its coverage; check the points or the catalogue")
    return (f"{source.collection} at {source.url} has no item in the configured years and "
            f"months anywhere (collection extent {extent}): check years or the catalogue")


def _temporal_extent(client, collection: str) -> str:
    try:
        interval = client.get_collection(collection).extent.temporal.intervals[0]
    except Exception:  # noqa: BLE001 (a courtesy in a message)
        return "unknown"
    return " to ".join(str(t.date()) if t else "open" for t in interval)


#: Error texts of an unreachable host, by cause.
_DNS = re.compile(r"Name or service not known|Temporary failure in name resolution|"
                  r"nodename nor servname|getaddrinfo|NameResolution|Could not resolve host",
                  re.IGNORECASE)
_REFUSED = re.compile(r"Connection refused|Couldn't connect|Failed to connect", re.IGNORECASE)
_STATUS = re.compile(r"\b(401|403|404|429|5\d\d)\b")


def explain(error: BaseException, url: str | None) -> str:
    """One line: what failed, and what to do about it."""
    text = " ".join(str(error).split())
    where = url or "the source"
    if _DNS.search(text):
        return f"cannot resolve the host of {where} (DNS): check the network and the URL"
    if _REFUSED.search(text):
        return (f"{where} refused the connection (nothing answers there): check the URL and the "
                "network")
    status = getattr(getattr(error, "response", None), "status_code", None) or getattr(
        error, "status_code", None)
    if status is None and (m := _STATUS.search(text)):
        status = int(m.group(1))
    if status in (401, 403):
        if "token" in text.lower() or "sas" in text.lower() or "sig=" in text:
            return (f"access refused (HTTP {status}) while reading {where}: the signed URL or its "
                    "token expired or was refused; run again, or check the token endpoint "
                    f"(source.options.sas_url) ({text[:200]})")
        return (f"access refused (HTTP {status}) by {where}: it needs credentials or a valid "
                f"token ({text[:200]})")
    if isinstance(error, TimeoutError) or "timed out" in text.lower():
        return f"{where} did not answer in time: check the network, or raise source.options.timeout"
    return f"{type(error).__name__} from {where}: {text[:300]}"


def _describe(source: Source) -> str:
    d = source.describe()
    parts = [d.get("kind", "?"), d.get("level", "?")]
    for key in ("catalogue", "url", "collection", "path"):
        if d.get(key):
            parts.append(f"{key} {d[key]}")
    if isinstance(source, StacSource) and not d.get("url"):
        parts.append(f"url {source.url} collection {source.collection}")
    return ", ".join(str(p) for p in parts)


def _lonlat(target: Target) -> tuple[float, float]:
    w, s, e, n = target.grid.bounds_lonlat()
    return (w + e) / 2, (s + n) / 2


def _cost(c: ReadCost) -> str:
    traffic = "" if c.requests is None else f", {c.requests} requests, {_size(c.nbytes)}"
    return f"{c.seconds:.2f} s{traffic}"


def _size(nbytes: float | None) -> str:
    if nbytes is None:
        return "? bytes"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:,.0f} {unit}" if unit == "B" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1000
    return ""


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# -- GDAL's network statistics ---------------------------------------------------------------
def _gdal():
    """GDAL's C library as rasterio loaded it (None where it cannot be found)."""
    import rasterio

    folder = Path(rasterio.__file__).parent
    candidates = glob.glob(str(folder.parent / "rasterio.libs" / "libgdal*"))
    for path in candidates or ["libgdal.so"]:
        try:
            lib = ctypes.CDLL(path)
            lib.VSINetworkStatsGetAsSerializedJSON.restype = ctypes.c_void_p
            lib.VSINetworkStatsGetAsSerializedJSON.argtypes = [ctypes.c_void_p]
            lib.VSIFree.argtypes = [ctypes.c_void_p]
            return lib
        except (OSError, AttributeError):
            continue
    return None


@contextmanager
def network_stats() -> Iterator[dict]:
    """Count the HTTP requests and bytes GDAL makes inside the block (``requests``, ``bytes``
    in the yielded dict afterwards; 0 for local files, absent where GDAL cannot tell)."""
    lib = _gdal()
    out: dict = {}
    if lib is None:
        yield out
        return
    previous = os.environ.get("CPL_VSIL_NETWORK_STATS_ENABLED")
    os.environ["CPL_VSIL_NETWORK_STATS_ENABLED"] = "YES"  # read by GDAL in every thread
    lib.VSINetworkStatsReset()
    try:
        yield out
        pointer = lib.VSINetworkStatsGetAsSerializedJSON(None)
        stats = json.loads(ctypes.string_at(pointer).decode() or "{}") if pointer else {}
        if pointer:
            lib.VSIFree(pointer)
        methods = stats.get("methods", {})
        out["requests"] = sum(m.get("count", 0) for m in methods.values())
        out["bytes"] = sum(m.get("downloaded_bytes", 0) for m in methods.values())
    finally:
        if previous is None:
            os.environ.pop("CPL_VSIL_NETWORK_STATS_ENABLED", None)
        else:
            os.environ["CPL_VSIL_NETWORK_STATS_ENABLED"] = previous
        lib.VSINetworkStatsReset()
