"""Resampling onto patch grids at a file's edge: values inside, nothing invented beyond it.

The reference is GDAL's own warper on the whole file (exact transformation, no kernel
widening), which samples no destination pixel whose position falls outside the source.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject, transform

from cropland.core.grid import PatchGrid
from cropland.sources.resample import read_under_grids, resample_groups
from tests.sources.loopback import write_cog

UTM = "EPSG:32613"
ORIGIN = (400_000.0, 5_800_000.0)  # top-left corner of the file, Saskatchewan


@pytest.fixture()
def small_file(tmp_path):
    """A 60 x 60 px 20 m file of smoothly varying DN (1..), like a 20 m band."""
    rows, cols = np.mgrid[0:60, 0:60]
    dn = (1000 + 7 * rows + 13 * cols).astype(np.uint16)
    path = tmp_path / "B05.tif"
    write_cog(path, dn, Affine(20, 0, ORIGIN[0], 0, -20, ORIGIN[1]), UTM, blocksize=256)
    return path


def grid_across_the_east_edge(size=64) -> PatchGrid:
    """A 10 m EPSG:3978 grid centred on the file's east edge (half of it beyond the file)."""
    [lon], [lat] = transform(UTM, "EPSG:4326", [ORIGIN[0] + 1200], [ORIGIN[1] - 600])
    return PatchGrid.around(lon, lat, size)


def gdal_reference(path, grid: PatchGrid, how: str) -> np.ndarray:
    with rasterio.open(path) as src:
        dn = src.read(1).astype(np.float32)
        out = np.full(grid.shape, np.nan, np.float32)
        reproject(dn, out, src_transform=src.transform, src_crs=src.crs, src_nodata=0,
                  dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
                  resampling=Resampling[how], error_threshold=0, XSCALE=1, YSCALE=1)
    return out


@pytest.mark.parametrize("how", ["bilinear", "nearest"])
def test_no_value_beyond_the_file_edge(small_file, how):
    grid = grid_across_the_east_edge()
    with rasterio.open(small_file) as src:
        [pixels] = read_under_grids(src, [grid])
    [(_, [got])] = list(resample_groups({"B5": pixels}, grid, how))
    ref = gdal_reference(small_file, grid, how)
    assert 0.3 < np.isnan(ref).mean() < 0.7  # the grid straddles the edge
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=0.5, equal_nan=True)  # DN


def test_bilinear_keeps_the_last_half_pixel_inside_the_file(small_file):
    """Positions between the last pixel centre and the edge are inside: they get values."""
    grid = grid_across_the_east_edge()
    with rasterio.open(small_file) as src:
        [pixels] = read_under_grids(src, [grid])
        cols, rows = np.meshgrid(np.arange(64) + 0.5, np.arange(64) + 0.5)
        xs, ys = grid.transform @ (cols, rows)
        ux, uy = transform(grid.crs, UTM, xs.ravel(), ys.ravel())
        col = ((np.asarray(ux) - ORIGIN[0]) / 20).reshape(64, 64)
    [(_, [got])] = list(resample_groups({"B5": pixels}, grid, "bilinear"))
    last_half = (col > 59.5) & (col <= 60)
    assert last_half.any()
    assert np.isfinite(got[last_half]).all()
    assert np.isnan(got[col > 60]).all()
