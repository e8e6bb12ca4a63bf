"""Extraction: from a source's scenes to one composite GeoTIFF per (point, year, month).

The unit of work is a :class:`Job`: the pending samples of one area in one month. A job
searches the area once and reads each scene once for all the samples it covers, so the
cost grows with the number of scenes, not with points x scenes.
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from cropland.config import BuildConfig
from cropland.core.composite import Composite
from cropland.core.grid import PatchGrid
from cropland.core.naming import SampleName
from cropland.dataset import tif_path
from cropland.export.geotiff import write_sample
from cropland.extraction.composite import median_composite
from cropland.extraction.manifest import TaskResult, task_id
from cropland.sources.base import Scene, Source
from cropland.sources.offset import OffsetCheck

log = logging.getLogger(__name__)

#: Side of the square areas (m, in the target CRS) whose points share one scene search.
AREA_SIZE = 50_000.0
#: Why a sample ended empty: the start of its manifest reason.
NO_COVERAGE, ALL_CLOUDY, NO_MASK = "no coverage", "all cloudy", "no mask"


@dataclass(frozen=True)
class Target:
    """One sample to extract: its name, patch grid and ACI code."""

    sample: SampleName
    grid: PatchGrid
    aci_code: int


@dataclass(frozen=True)
class Job:
    """The pending samples of one area in one month."""

    year: int
    month: int
    targets: tuple[Target, ...]

    @property
    def period(self) -> tuple[datetime, datetime]:
        """[first day of the month, first day of the next month)."""
        start = datetime(self.year, self.month, 1)
        days = calendar.monthrange(self.year, self.month)[1]
        return start, start + timedelta(days=days)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """WGS84 bounds of all the job's patches."""
        boxes = np.array([t.grid.bounds_lonlat() for t in self.targets])
        return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())


def samples_of(points: pd.DataFrame, cfg: BuildConfig) -> list[Target]:
    """Every (point, year, month) the configuration asks for, as extraction targets."""
    rows = points[points["year"].isin(cfg.years) & points["label"].isin(cfg.classes)]
    targets = []
    for r in rows.to_dict("records"):
        grid = PatchGrid.around(r["lon"], r["lat"], cfg.patch_size, cfg.resolution, cfg.crs)
        for month in cfg.months:
            sample = SampleName(int(r["point_id"]), int(r["year"]), month, r["province"], r["label"])
            targets.append(Target(sample, grid, int(r["aci_code"])))
    return targets


def plan_jobs(targets: list[Target], todo: set[str]) -> list[Job]:
    """Group the pending targets by area and month."""
    groups: dict[tuple, list[Target]] = defaultdict(list)
    for t in targets:
        if task_id(t.sample) in todo:
            area = (int(t.grid.x // AREA_SIZE), int(t.grid.y // AREA_SIZE))
            groups[(t.sample.year, t.sample.month, area)].append(t)
    return [Job(y, m, tuple(ts)) for (y, m, _), ts in sorted(groups.items())]


def run_job(source: Source, job: Job, cfg: BuildConfig) -> list[TaskResult]:
    """Search, read, composite and write every sample of a job; one result per sample.

    A sample without any clear pixel ends ``empty``, with the reason why: no coverage, all
    cloudy or no mask (the source's :meth:`~Source.census` of the month tells them apart).
    """
    start, end = job.period
    scenes = source.search(job.bbox, start, end, cfg.source.max_scene_cloud)
    stacks: dict[int, list] = defaultdict(list)
    for scene in scenes:
        covered = [k for k, t in enumerate(job.targets) if _intersects(scene.bbox, t.grid)]
        if not covered:
            continue
        patches = source.read(scene, [job.targets[k].grid for k in covered])
        offset = (patches.offset or OffsetCheck(scene.offset)).as_tag()
        for n, k in enumerate(covered):
            stacks[k].append((scene.id, patches.reflectance[n], patches.clear[n], patches.cloud[n],
                              offset))
    results, census = [], None
    for k, target in enumerate(job.targets):
        obs = stacks.get(k, [])
        result = _finish(target, obs, source, cfg)
        if result is None:
            census = source.census(job.bbox, start, end) if census is None else census
            result = TaskResult(task_id(target.sample), "empty", scenes=",".join(o[0] for o in obs),
                                reason=_why_empty(target, obs, census, source, cfg))
        results.append(result)
    return results


def _intersects(bbox: tuple[float, float, float, float], grid: PatchGrid) -> bool:
    w, s, e, n = grid.bounds_lonlat()
    return not (e < bbox[0] or w > bbox[2] or n < bbox[1] or s > bbox[3])


def _why_empty(target: Target, obs: list, census: list[Scene], source: Source,
               cfg: BuildConfig) -> str:
    """The reason a target got no clear pixel, starting with its kind."""
    if any(np.isfinite(o[1]).all(axis=0).any() for o in obs):
        return f"{ALL_CLOUDY}: every observed pixel of the {len(obs)} scenes is cloud or shadow"
    over = [s for s in census if _intersects(s.bbox, target.grid)]
    if not over:
        return f"{NO_COVERAGE}: no scene over the point this month"
    unmasked = [s.id for s in over if not source.masked(s)
                and s.cloud_cover < cfg.source.max_scene_cloud]
    if unmasked:
        return (f"{NO_MASK}: {len(unmasked)} scenes without a cloud mask layer ({unmasked[0]}"
                f"{', ...' if len(unmasked) > 1 else ''}); add SCL, QA60 or MSK_CLASSI_B00, or "
                "set source.options.mask: none")
    if obs:
        return f"{NO_COVERAGE}: the {len(obs)} scenes over the point have no data on the patch"
    cloud = min(s.cloud_cover for s in over)
    return (f"{ALL_CLOUDY}: the {len(over)} scenes over the point are {cloud:g} % cloudy or "
            f"more (max_scene_cloud {cfg.source.max_scene_cloud:g})")


def _finish(target: Target, obs: list, source: Source, cfg: BuildConfig) -> TaskResult | None:
    """The target's composite written as its sample file; None if it has no clear pixel."""
    tid = task_id(target.sample)
    ids = [o[0] for o in obs]
    if not obs:
        return None
    refl = np.stack([o[1] for o in obs])
    clear = np.stack([o[2] for o in obs])
    cloud = np.stack([o[3] for o in obs])
    median, valid = median_composite(refl, clear)
    if not valid.any():
        return None
    observed = np.isfinite(refl).all(axis=1)
    composite = Composite(
        sample=target.sample, grid=target.grid, reflectance=median, valid=valid, scenes=ids,
        cloud_fraction=float(cloud[observed].mean()) if observed.any() else 0.0,
        aci_code=target.aci_code, synthetic=source.synthetic, dn_offsets={o[0]: o[4] for o in obs},
    )
    path = tif_path(cfg.output, target.sample)
    write_sample(composite, path, cfg.indices, source.describe())
    return TaskResult(tid, "done", str(path.relative_to(cfg.output)), scenes=",".join(ids))
