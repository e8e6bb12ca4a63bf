from datetime import datetime

import numpy as np
import pytest

from cropland.core.grid import PatchGrid
from cropland.sources.simulator import SimulatorOptions, SimulatorSource


@pytest.fixture(scope="module")
def source():
    return SimulatorSource(options=SimulatorOptions(seed=3))


@pytest.fixture(scope="module")
def points(source):
    return source.synthetic_points(3, [2019, 2020], areas=2)


def test_points_table(points, source):
    first = points[points.year == 2019]
    assert len(first) == 30 and first.aci_code.value_counts().eq(3).all()
    assert set(points.province) == {"SK", "MB"}
    assert points.groupby("point_id").size().eq(2).all()  # every point in both years


def test_deterministic(points):
    again = SimulatorSource(options=SimulatorOptions(seed=3)).synthetic_points(3, [2019, 2020], areas=2)
    assert points.equals(again)
    other = SimulatorSource(options=SimulatorOptions(seed=4)).synthetic_points(3, [2019, 2020], areas=2)
    assert not points[["lon", "lat"]].equals(other[["lon", "lat"]])


def test_search_filters_on_scene_cloud(source, points):
    grid = PatchGrid.around(points.lon[0], points.lat[0])
    every = source.search(grid.bounds_lonlat(), datetime(2019, 6, 1), datetime(2019, 9, 1), 100)
    clear = source.search(grid.bounds_lonlat(), datetime(2019, 6, 1), datetime(2019, 9, 1), 5)
    assert 15 <= len(every) <= 20  # a 5-day revisit over 92 days
    assert all(s.cloud_cover < 5 for s in clear) and 0 < len(clear) < len(every)
    assert all(datetime(2019, 6, 1) <= s.datetime < datetime(2019, 9, 1) for s in every)


def test_native_grids_and_offset(source, points):
    grid = PatchGrid.around(points.lon[0], points.lat[0])
    old = source.search(grid.bounds_lonlat(), datetime(2019, 7, 1), datetime(2019, 8, 1), 100)[0]
    new = source.search(grid.bounds_lonlat(), datetime(2023, 7, 1), datetime(2023, 8, 1), 100)[0]
    assert old.offset == 0 and new.offset == -1000
    bounds = (600_000.0, 5_790_000.0, 601_200.0, 5_791_200.0)
    layers = source.render(old, bounds)
    assert layers["B4"][0].shape == (120, 120) and layers["B5"][0].shape == (60, 60)
    assert layers["B1"][0].shape == (20, 20) and layers["SCL"][0].shape == (60, 60)
    assert layers["B4"][1].a == 10 and layers["B11"][1].a == 20 and layers["B9"][1].a == 60
    # DN carry the offset from baseline 04.00: the same surface reads ~1000 DN higher
    dn_new = source.render(new, bounds)["B8"][0].astype(float)
    assert dn_new[dn_new > 0].min() > 1000


def test_read_returns_reflectance_and_masks(source, points):
    grids = [PatchGrid.around(r.lon, r.lat) for r in points[points.year == 2019].itertuples()][:4]
    scene = source.search(grids[0].bounds_lonlat(), datetime(2019, 6, 1), datetime(2019, 10, 1), 100)
    cloudy = max(scene, key=lambda s: s.cloud_cover)
    patches = source.read(cloudy, grids)
    assert patches.reflectance.shape == (4, 12, 64, 64) and patches.reflectance.dtype == np.float32
    ok = np.isfinite(patches.reflectance)
    assert ok.any() and np.nanmax(patches.reflectance) < 1.2 and np.nanmin(patches.reflectance) >= 0
    assert not (patches.clear & patches.cloud).any()  # a cloudy pixel is never clear


def test_l1c_uses_qa60(points):
    l1c = SimulatorSource(level="L1C", options=SimulatorOptions(seed=3))
    grid = PatchGrid.around(points.lon[0], points.lat[0])
    scenes = l1c.search(grid.bounds_lonlat(), datetime(2019, 6, 1), datetime(2019, 10, 1), 100)
    assert scenes[0].level == "L1C" and "QA60" in l1c.render(
        scenes[0], (600_000.0, 5_790_000.0, 600_600.0, 5_790_600.0)
    )
    patches = l1c.read(max(scenes, key=lambda s: s.cloud_cover), [grid])
    assert patches.reflectance.shape == (1, 12, 64, 64)
