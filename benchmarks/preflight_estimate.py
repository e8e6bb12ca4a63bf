"""Benchmark: `cropland check`'s estimate of a build against the same build, measured.

    .venv/bin/python benchmarks/preflight_estimate.py [--points 24] [--months 6 7]

Serves a loopback catalogue of simulator scenes (COGs on a range-serving HTTP server, items
in ``rustac serve``) over two farming areas 150 km apart, runs the preflight
(:func:`cropland.extraction.preflight.preflight`) on a build configuration, then runs that
build (``cropland.extraction.runner.extract``, one worker) and compares the estimate's time,
requests and bytes with what the build took and what the file server served. Results replace
the section "Preflight estimate" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the loopback servers of the tests

from benchmarks._doc import provenance, write_section
from cropland.config import load_config
from cropland.core.classes import get_class
from cropland.extraction.preflight import preflight
from cropland.extraction.runner import extract
from cropland.points.table import write_points
from cropland.sources.simulator import SimulatorSource
from tests.sources.loopback import RangeServer, simulator_items, start_stac_api

#: Two 4 km farming areas (Saskatchewan, Manitoba), far enough apart to be two jobs a month.
AREAS = [(-106.47, 52.335, -106.42, 52.365), (-101.0, 50.0, -100.95, 50.03)]


def points_table(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    codes = [get_class(c).code for c in ("CORN", "SOYBEAN", "OAT", "BARLEY")]
    for k in range(n):
        w, s, e, north = AREAS[k % len(AREAS)]
        rows.append({"point_id": k + 1, "year": 2019, "lon": rng.uniform(w + 0.008, e - 0.008),
                     "lat": rng.uniform(s + 0.005, north - 0.005), "province": "SK" if k % 2 == 0
                     else "MB", "aci_code": codes[k % 4]})
    return pd.DataFrame(rows)


def scene_reads(manifest: Path) -> int:
    """Scenes read by the build: distinct scenes of each job (an area's samples in a month)."""
    import sqlite3

    with sqlite3.connect(manifest) as db:
        rows = db.execute("SELECT point_id, month, scenes FROM tasks").fetchall()
    jobs: dict[tuple[int, int], set[str]] = {}
    for point_id, month, scenes in rows:  # odd points in the first area, even in the second
        jobs.setdefault((point_id % 2, month), set()).update(s for s in (scenes or "").split(",") if s)
    return sum(len(s) for s in jobs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=24)
    parser.add_argument("--months", type=int, nargs="+", default=[6, 7])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = RangeServer(work / "cogs")
        (work / "cogs").mkdir(exist_ok=True)
        sim = SimulatorSource()
        items = []
        for area in AREAS:
            for month in args.months:
                items += simulator_items(sim, area, datetime(2019, month, 1),
                                         datetime(2019, month + 1, 1), work / "cogs", server.url)
        api = start_stac_api(items, work / "api")
        try:
            write_points(points_table(args.points), work / "points.csv")
            config = {"years": [2019], "months": args.months,
                      "classes": ["CORN", "SOYBEAN", "OAT", "BARLEY"],
                      "points": {"path": "points.csv"}, "output": "out",
                      "source": {"kind": "stac", "level": "L2A", "max_scene_cloud": 50,
                                 "options": {"catalogue": "earth-search", "url": api.url,
                                             "collection": "sentinel-2-l2a"}}}
            (work / "build.yaml").write_text(yaml.safe_dump(config))
            cfg = load_config(work / "build.yaml")
            started = time.perf_counter()
            report = preflight(cfg)
            check_s = time.perf_counter() - started
            served = server.counters.requests, server.counters.bytes
            started = time.perf_counter()
            summary = extract(cfg, progress=False)
            build_s = time.perf_counter() - started
            requests = server.counters.requests - served[0]
            nbytes = server.counters.bytes - served[1]
            reads = scene_reads(cfg.output / "manifest.sqlite")
        finally:
            api.stop()
            server.stop()
    e = report.estimate
    rows = [("time", f"{e.seconds:.1f} s", f"{build_s:.1f} s", e.seconds / build_s),
            ("scene reads", f"{e.scene_reads:.0f}", f"{reads}", e.scene_reads / reads),
            ("requests (COG server)", f"{e.requests - e.jobs:,.0f}", f"{requests:,}",
             (e.requests - e.jobs) / requests),
            ("bytes (COG server)", f"{e.nbytes / 1e6:.1f} MB", f"{nbytes / 1e6:.1f} MB",
             e.nbytes / nbytes)]
    table = "\n".join(f"| {name} | {est} | {meas} | {'' if r is None else f'{r:.2f}'} |"
                      for name, est, meas, r in rows)
    command = f"python benchmarks/preflight_estimate.py --points {args.points} --months " + \
        " ".join(map(str, args.months))
    text = f"""## Preflight estimate

`cropland check` (`cropland.extraction.preflight`) searches one point per year in every
month, reads one scene on one patch and on up to 8 patches of that point's job, and
extrapolates to the whole build. Here on a loopback catalogue of simulator scenes (two areas
150 km apart, {args.points} points, months {args.months}: {e.jobs} jobs, {e.samples}
samples), against the same build run right after it with one worker ({summary.counts}).
Requests and bytes are GDAL's own counts in the preflight and the file server's in the build
(the estimate's STAC searches left out).

| figure | estimate | measured | ratio |
|---|---:|---:|---:|
{table}

The check itself took {check_s:.1f} s. Scene reads are counted in the build's manifest (the
distinct scenes of each job). The estimate assumes every job finds as many scenes a month as
the sampled point (that of the largest job) did, so an area with more or fewer clear scenes
than the sampled one moves requests and bytes with it; its time leaves out compositing and
writing the samples (small beside reads over a network) and comes from single timed reads, so
a busy machine shifts it by tens of percent either way (0.8-2.1 times the build's time over
six runs on this shared machine while others' tests ran).

{provenance(command)}
"""
    print(text)
    write_section("preflight-estimate", text)


if __name__ == "__main__":
    main()
