"""Extraction jobs: their month, and how pending samples group into jobs."""

from __future__ import annotations

from datetime import datetime

from cropland.core.grid import PatchGrid
from cropland.core.naming import SampleName
from cropland.extraction.extract import AREA_SIZE, Job, Target, plan_jobs
from cropland.extraction.manifest import task_id


def test_period_is_the_calendar_month():
    assert Job(2020, 2, ()).period == (datetime(2020, 2, 1), datetime(2020, 3, 1))  # leap year
    assert Job(2019, 12, ()).period == (datetime(2019, 12, 1), datetime(2020, 1, 1))
    start, end = Job(2019, 6, ()).period
    assert type(start) is type(end) is datetime


def target(point_id: int, month: int, x: float) -> Target:
    grid = PatchGrid("EPSG:3978", x, 100.0)
    return Target(SampleName(point_id, 2019, month, "SK", "CORN"), grid, 147)


def test_jobs_group_pending_samples_by_area_and_month():
    near, far = 1_000.0, 1_000.0 + 2 * AREA_SIZE
    targets = [target(1, 6, near), target(2, 6, near + 500), target(3, 6, far),
               target(1, 7, near), target(2, 7, near + 500)]
    todo = {task_id(t.sample) for t in targets} - {"2_201907"}
    jobs = plan_jobs(targets, todo)
    groups = [(j.month, [t.sample.point_id for t in j.targets]) for j in jobs]
    assert sorted(groups) == [(6, [1, 2]), (6, [3]), (7, [1])]
