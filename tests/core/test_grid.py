import numpy as np
import pytest
from pyproj import Transformer

from cropland.core.grid import PatchGrid


@pytest.mark.parametrize("size", [64, 65])
def test_grid_against_pyproj(size):
    lon, lat = -97.91467, 49.48078
    grid = PatchGrid.around(lon, lat, size=size)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3978", always_xy=True).transform(lon, lat)
    left, bottom, right, top = grid.bounds
    assert grid.shape == (size, size)
    assert right - left == pytest.approx(size * 10) and top - bottom == pytest.approx(size * 10)
    assert ((left + right) / 2, (bottom + top) / 2) == pytest.approx((x, y), abs=1e-6)
    t = grid.transform
    assert (t.a, t.e) == (10.0, -10.0) and (t.c, t.f) == pytest.approx((x - size * 5, y + size * 5))
    # the pixel containing the point: the centre of an odd grid, a corner of an even one
    col, row = ~t @ (x, y)
    assert (col, row) == pytest.approx((size / 2, size / 2))


def test_lonlat_bounds_contain_the_point():
    grid = PatchGrid.around(-63.4, 46.3)
    w, s, e, n = grid.bounds_lonlat()
    assert w < -63.4 < e and s < 46.3 < n
    to_lonlat = Transformer.from_crs("EPSG:3978", "EPSG:4326", always_xy=True)
    left, bottom, right, top = grid.bounds
    for x in np.linspace(left, right, 5):
        for y in (bottom, top):
            lon, lat = to_lonlat.transform(x, y)
            assert w <= lon <= e and s <= lat <= n
