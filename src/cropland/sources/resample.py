"""Native pixels under patch grids, and their resampling onto the grids.

A scene's band files are read once for every patch grid of a job: windows close together
are read as one (:func:`read_under_grids`), and the pixels are resampled from exact
pixel-centre positions (:func:`resample_groups`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window, from_bounds

from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.sources.crs import rio_crs, transformer
from cropland.sources.http import TransientError


@dataclass(frozen=True)
class Pixels:
    """Native pixels of one asset under one grid (DN as float32, no data as NaN)."""

    data: np.ndarray
    transform: Affine
    crs: str


def read_under_grids(src, grids: Sequence[PatchGrid],
                     merge: Callable[[np.ndarray], np.ndarray] | None = None
                     ) -> list[Pixels | None]:
    """The native pixels of ``src`` under each grid (None where disjoint).

    Windows close to each other are read together (one read of their union, when it is
    not much larger than they are), so patches sharing tiles cost one decode and a few
    range requests; far-apart windows are read on their own. Band 1 is read, or with
    ``merge`` every band, merged into one layer (``(bands, h, w)`` to ``(h, w)``).
    """
    if src.crs is None:  # a header cut short by the network parses as a bare TIFF
        raise TransientError(f"{src.name}: no CRS in the file header (incomplete read?)")
    crs = src.crs.to_wkt()  # once per file: CRS conversions are slow
    windows = [_window_under(src, crs, g) for g in grids]
    out: list[Pixels | None] = [None] * len(grids)
    nodata = src.nodata or 0
    for members in _clusters(windows):
        union = _union([windows[k] for k in members])
        data = (src.read(1, window=union) if merge is None
                else merge(src.read(window=union))).astype(np.float32)
        data[data == nodata] = np.nan  # no data must not blend into neighbours
        for k in members:
            w = windows[k]
            assert w is not None  # clusters hold only the windows that exist
            r, c = w.row_off - union.row_off, w.col_off - union.col_off
            out[k] = Pixels(data[r:r + w.height, c:c + w.width], src.window_transform(w), crs)
    return out


def _window_under(src, crs: str, grid: PatchGrid) -> Window | None:
    """The window of ``src`` under ``grid`` plus a 3-pixel margin, or None if disjoint."""
    left, bottom, right, top = _bounds_in(grid, crs)
    pad = 3 * max(src.res)
    w = from_bounds(left - pad, bottom - pad, right + pad, top + pad, src.transform)
    col, row = int(np.floor(w.col_off)), int(np.floor(w.row_off))
    window = Window(col, row, int(np.ceil(w.col_off + w.width)) - col,
                    int(np.ceil(w.row_off + w.height)) - row)
    try:
        return window.intersection(Window(0, 0, src.width, src.height))
    except rasterio.errors.WindowError:
        return None


@lru_cache(maxsize=1 << 16)
def _bounds_in(grid: PatchGrid, crs: str) -> tuple[float, float, float, float]:
    """A grid's bounds in another CRS (computed once for all the bands of a scene)."""
    return transformer(grid.crs, crs).transform_bounds(*grid.bounds, densify_pts=21)


def _union(windows: list[Window]) -> Window:
    col = min(w.col_off for w in windows)
    row = min(w.row_off for w in windows)
    return Window(col, row, max(w.col_off + w.width for w in windows) - col,
                  max(w.row_off + w.height for w in windows) - row)


def _clusters(windows: list[Window | None], slack: float = 2.0) -> list[list[int]]:
    """Greedy groups of windows whose union covers at most ``slack`` x their own area."""
    groups: list[tuple[list[int], Window, float]] = []
    for k, w in enumerate(windows):
        if w is None:
            continue
        area = w.width * w.height
        for g, (members, union, total) in enumerate(groups):
            merged = _union([union, w])
            if merged.width * merged.height <= slack * (total + area):
                groups[g] = (members + [k], merged, total + area)
                break
        else:
            groups.append(([k], w, area))
    return [members for members, _, _ in groups]


def resample_groups(layers: dict[str, Pixels | None], grid: PatchGrid, how: str):
    """Yield (band indices, resampled DN) per group of layers sharing one native grid.

    Bands of one resolution share their pixel grid, so one set of sample positions serves
    them all. Nearest and bilinear are computed here from exact pixel-centre positions
    (no per-call GDAL set-up); bilinear leaves no-data neighbours out and renormalises the
    weights of the others, as GDAL's warper does. Cubic goes through GDAL.
    """
    present = {name: px for name, px in layers.items() if px is not None}
    groups: dict[tuple, list[str]] = {}
    for name, px in present.items():
        groups.setdefault((px.transform, px.crs, px.data.shape), []).append(name)
    for (transform, crs, _), names in groups.items():
        data = np.stack([present[n].data for n in names])
        if how == "cubic":
            out = _gdal_resample(data, transform, crs, grid, how)
        else:
            index, weight = _plan(grid, crs, transform, data.shape[1:], how)
            out = _apply(data, index, weight).reshape(len(names), *grid.shape)
        yield [BAND_NAMES.index(n) if n in BAND_NAMES else 0 for n in names], out


@lru_cache(maxsize=512)
def _positions(grid: PatchGrid, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """The grid's pixel centres in ``crs`` (computed once per grid for all scenes in it)."""
    cols, rows = np.meshgrid(np.arange(grid.size) + 0.5, np.arange(grid.size) + 0.5)
    return transformer(grid.crs, crs).transform(*(grid.transform @ (cols, rows)))


@lru_cache(maxsize=4096)
def _plan(grid: PatchGrid, crs: str, transform: Affine, shape: tuple[int, int],
          how: str) -> tuple[np.ndarray, np.ndarray]:
    """Source pixels and weights of every grid pixel: ``(k, H*W)`` flat indices and weights.

    ``k`` is 4 for bilinear (the four nearest pixel centres) and 1 for nearest; samples
    outside the source get weight 0, so nothing is invented beyond a file's edge (the
    window's edges are the file's: windows carry a margin wherever the file goes on).
    Scenes of one tile share their pixel grid, so a plan serves every scene of a job.
    """
    col, row = ~transform @ _positions(grid, crs)
    h, w = shape
    beyond = (col < 0) | (col > w) | (row < 0) | (row > h)
    if how == "nearest":
        taps = [(np.floor(row).astype(np.int64), np.floor(col).astype(np.int64),
                 np.ones(col.shape, np.float32))]
    else:
        x, y = col - 0.5, row - 0.5  # to pixel-centre indices
        j0, i0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        fx, fy = (x - j0).astype(np.float32), (y - i0).astype(np.float32)
        taps = [(i0, j0, (1 - fy) * (1 - fx)), (i0, j0 + 1, (1 - fy) * fx),
                (i0 + 1, j0, fy * (1 - fx)), (i0 + 1, j0 + 1, fy * fx)]
    index = np.empty((len(taps), col.size), np.int64)
    weight = np.empty((len(taps), col.size), np.float32)
    for t, (i, j, wt) in enumerate(taps):
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w) & ~beyond
        index[t] = np.where(inside, i * w + j, 0).ravel()
        weight[t] = np.where(inside, wt, 0).ravel()
    return index, weight


def _apply(data: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted sums of source pixels, leaving out no data (NaN) and renormalising the
    weights of the others, as GDAL's warper does; NaN where no weight is left."""
    values = data.reshape(data.shape[0], -1)[:, index]  # (bands, taps, pixels)
    ok = np.isfinite(values)
    w = np.where(ok, weight, np.float32(0))
    total = np.where(ok, values, np.float32(0)) * w
    wsum = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum > 1e-5, total.sum(axis=1) / wsum, np.nan).astype(np.float32)


def _gdal_resample(data: np.ndarray, transform: Affine, crs: str, grid: PatchGrid,
                   how: str) -> np.ndarray:
    out = np.full((data.shape[0], *grid.shape), np.nan, np.float32)
    reproject(data, out, src_transform=transform, src_crs=rio_crs(crs), src_nodata=np.nan,
              dst_transform=grid.transform, dst_crs=rio_crs(grid.crs), dst_nodata=np.nan,
              resampling=Resampling[how])
    return out
