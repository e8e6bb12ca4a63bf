"""Field-centre sampling from ACI rasters.

A pixel is a *candidate* for class ``c`` when

1. the square window of ``window_m`` (640 m: 21 ACI pixels at 30 m) centred on it lies
   inside the raster and holds no no-data pixel,
2. at least ``min_purity`` of the window's pixels are ``c``, and
3. the ``centre_px`` x ``centre_px`` block at its centre is all ``c`` (a uniform centre).

The raster is read in chunks of ``chunk_px`` pixels with a halo of half a window, so a
province-sized raster never sits in memory. Window counts are exact (summed-area tables).

Every pixel has a pseudo-random priority, a hash of its position, the raster's index and
the seed: the result depends on nothing else (not on the chunk size nor the reading order).
Candidates are thinned to the best one per class in cells of ``min_spacing_m`` (chunks are
whole cells), and the ``max_candidates`` best per class are kept. Points are then accepted
in priority order while their class (or class and province) quota is open and no accepted
point is closer than ``min_spacing_m``; candidates outside the provinces are dropped.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyproj import Transformer

from cropland.core.classes import get_class
from cropland.core.grid import DEFAULT_CRS
from cropland.core.provinces import PROVINCES
from cropland.points.aci import AciReader, iter_chunks, n_chunks, resolution
from cropland.points.config import SampleConfig, spacing_cell_pixels, window_pixels
from cropland.points.provinces import locate

log = logging.getLogger(__name__)

_CANDIDATE_COLUMNS = ["raster", "row", "col", "aci_code", "share", "priority"]


@dataclass(frozen=True)
class Geometry:
    """Sampling geometry in pixels of one raster."""

    window_px: int
    centre_px: int
    cell_px: int
    chunk_px: int

    @property
    def halo(self) -> int:
        return self.window_px // 2

    @classmethod
    def of(cls, reader: AciReader, cfg: SampleConfig) -> Geometry:
        res = resolution(reader)
        window = window_pixels(cfg.window_m, res)
        centre = min(cfg.centre_px, window)
        cell = spacing_cell_pixels(max(cfg.min_spacing_m, res), res)
        chunk = max(1, cfg.chunk_px // cell) * cell  # chunks made of whole cells
        return cls(window_px=window, centre_px=centre, cell_px=cell, chunk_px=chunk)


@dataclass(frozen=True)
class SampleResult:
    """Sampled points (the points table plus ``share``) and a summary per quota."""

    points: pd.DataFrame
    summary: pd.DataFrame  # class[, province], wanted, candidates, selected


def integral_image(mask: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row and column: ``I[i, j] = mask[:i, :j].sum()``."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int32)
    np.cumsum(mask, axis=0, dtype=np.int32, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return table


def window_sums(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """Exact sums of the ``k`` x ``k`` windows whose top-left corners are ``(rows, cols)``."""
    return (table[rows + k, cols + k] - table[rows, cols + k]
            - table[rows + k, cols] + table[rows, cols])


def erode(mask: np.ndarray, k: int) -> np.ndarray:
    """``out[i, j]`` is True where the ``k`` x ``k`` window at ``mask[i:, j:]`` is all True."""
    rows = mask[: mask.shape[0] - k + 1].copy()
    for i in range(1, k):
        rows &= mask[i : mask.shape[0] - k + 1 + i]
    out = rows[:, : rows.shape[1] - k + 1].copy()
    for j in range(1, k):
        out &= rows[:, j : rows.shape[1] - k + 1 + j]
    return out


def priority(rows: np.ndarray, cols: np.ndarray, width: int, seed: int, salt: int) -> np.ndarray:
    """A uniform 64-bit hash of each pixel position, the seed and the raster (splitmix64)."""
    key = _mix(np.array([(seed * 0x10001 + salt) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    index = rows.astype(np.uint64) * np.uint64(width) + cols.astype(np.uint64)
    return _mix(index ^ key)


def _mix(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def chunk_candidates(
    pixels: np.ndarray,
    row0: int,
    col0: int,
    codes: Sequence[int],
    geom: Geometry,
    min_count: int,
    nodata: int,
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Candidates of one chunk: ``(code, rows, cols, counts)`` per class present.

    ``pixels`` is the chunk grown by ``geom.halo`` on each side; rows and columns are
    global pixel indices of the candidate centres.
    """
    w, c, h = geom.window_px, geom.centre_px, geom.halo
    core = pixels[h : pixels.shape[0] - h, h : pixels.shape[1] - h]
    complete = erode(pixels != nodata, w)  # core-shaped: windows without no-data
    if not complete.any():
        return []
    lo = h - c // 2
    out = []
    for code in codes:
        if not (core == code).any():
            continue
        mask = pixels == code
        uniform = erode(mask, c)[lo : lo + core.shape[0], lo : lo + core.shape[1]]
        r, q = np.nonzero(uniform & complete)
        if not r.size:
            continue
        counts = window_sums(integral_image(mask), r, q, w)
        pure = counts >= min_count
        if pure.any():
            out.append((code, r[pure] + row0, q[pure] + col0, counts[pure]))
    return out


def find_candidates(
    reader: AciReader, cfg: SampleConfig, raster: int = 0, thin: bool = True
) -> pd.DataFrame:
    """All candidate centres of one raster (thinned per spacing cell unless ``thin=False``).

    Returns:
        Columns ``raster, row, col, aci_code, share, priority``, sorted by priority
        (highest first).
    """
    geom = Geometry.of(reader, cfg)
    codes = [get_class(name).code for name in cfg.classes]
    min_count = math.ceil(cfg.min_purity * geom.window_px**2 - 1e-9)
    kept: dict[int, pd.DataFrame] = {}
    chunks = iter_chunks(reader, geom.chunk_px, geom.halo)
    for row0, col0, pixels in progress(chunks, n_chunks(reader, geom.chunk_px), "sampling"):
        found = chunk_candidates(pixels, row0, col0, codes, geom, min_count, reader.nodata)
        for code, rows, cols, counts in found:
            part = pd.DataFrame({
                "raster": raster, "row": rows, "col": cols, "aci_code": code,
                "share": counts / geom.window_px**2,
                "priority": priority(rows, cols, reader.width, cfg.seed, raster),
            })
            if thin:
                part = _best_per_cell(part, geom.cell_px, reader.width)
            kept[code] = _top(pd.concat([kept.get(code), part]), cfg.max_candidates)
    if not kept:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in _CANDIDATE_COLUMNS})
    out = pd.concat(kept.values(), ignore_index=True)
    return out.sort_values(["priority", "row", "col"], ascending=[False, True, True],
                           ignore_index=True)


def _best_per_cell(part: pd.DataFrame, cell_px: int, width: int) -> pd.DataFrame:
    cells_per_row = width // cell_px + 1
    cell = (part["row"] // cell_px) * cells_per_row + part["col"] // cell_px
    best = part.assign(cell=cell).sort_values("priority").drop_duplicates("cell", keep="last")
    return best.drop(columns="cell")


def _top(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df if len(df) <= n else df.nlargest(n, "priority")


def locate_candidates(cands: pd.DataFrame, reader: AciReader) -> pd.DataFrame:
    """Add pixel-centre coordinates: ``x, y`` (EPSG:3978), ``lon, lat`` and ``province``."""
    t = reader.transform  # north-up (checked when the reader opened)
    x = t.c + (cands["col"].to_numpy() + 0.5) * t.a
    y = t.f + (cands["row"].to_numpy() + 0.5) * t.e
    crs = reader.crs.to_wkt()
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    x, y = Transformer.from_crs(crs, DEFAULT_CRS, always_xy=True).transform(x, y)
    return cands.assign(x=x, y=y, lon=lon, lat=lat, province=locate(lon, lat))


def select_points(cands: pd.DataFrame, cfg: SampleConfig) -> pd.DataFrame:
    """Accept candidates in priority order under the quotas and the minimum spacing."""
    cands = cands[cands["province"].isin(cfg.provinces or list(PROVINCES))]
    cands = cands.sort_values(["priority", "raster", "row", "col"],
                              ascending=[False, True, True, True])
    names = {code: get_class(int(code)).name for code in cands["aci_code"].unique()}
    left: dict[tuple, int] = {}
    spacing = _Spacing(cfg.min_spacing_m)
    chosen = []
    for i, code, prov, x, y in zip(cands.index, cands["aci_code"], cands["province"],
                                   cands["x"], cands["y"], strict=True):
        key = (names[code], prov) if cfg.per_province else (names[code],)
        if left.setdefault(key, cfg.quota_of(names[code])) <= 0 or not spacing.free(x, y):
            continue
        spacing.add(x, y)
        left[key] -= 1
        chosen.append(i)
    return cands.loc[chosen]


class _Spacing:
    """Accepted positions on a grid of cells as wide as the spacing."""

    def __init__(self, distance: float):
        self.d = distance
        self.cells: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        return (math.floor(x / self.d), math.floor(y / self.d)) if self.d else (0, 0)

    def free(self, x: float, y: float) -> bool:
        if not self.d:
            return True
        cx, cy = self._cell(x, y)
        return all(
            (x - px) ** 2 + (y - py) ** 2 >= self.d**2
            for dx in (-1, 0, 1) for dy in (-1, 0, 1)
            for px, py in self.cells.get((cx + dx, cy + dy), ())
        )

    def add(self, x: float, y: float) -> None:
        if self.d:
            self.cells[self._cell(x, y)].append((x, y))


def sample_points(readers: Sequence[AciReader], cfg: SampleConfig) -> SampleResult:
    """Sample field centres from the ACI rasters of one year.

    Args:
        readers: ACI rasters of ``cfg.year`` (e.g. one per province); spacing applies
            across them.
        cfg: classes, quotas, purity, window, spacing and seed.

    Returns:
        The points (points-table columns plus ``share``, the class's share of the window)
        and a summary of wanted, available and selected points per quota.
    """
    parts = []
    for i, reader in enumerate(readers):
        cands = find_candidates(reader, cfg, raster=i)
        log.info("%s: %d candidates after thinning", reader, len(cands))
        parts.append(locate_candidates(cands, reader))
    cands = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if cands.empty:
        cands = pd.DataFrame(columns=[*_CANDIDATE_COLUMNS, "x", "y", "lon", "lat", "province"])
    chosen = select_points(cands, cfg)
    points = pd.DataFrame({
        "point_id": np.arange(cfg.first_id, cfg.first_id + len(chosen), dtype=np.int64),
        "year": cfg.year,
        "lon": chosen["lon"].to_numpy(float),
        "lat": chosen["lat"].to_numpy(float),
        "province": chosen["province"].to_numpy(object),
        "aci_code": chosen["aci_code"].to_numpy(np.int64),
        "label": [get_class(int(c)).name for c in chosen["aci_code"]],
        "share": chosen["share"].to_numpy(float),
    })
    summary = _summary(cands, points, cfg)
    for *key, wanted, candidates, selected in summary.itertuples(index=False, name=None):
        if selected < wanted:
            log.warning("%s: %d of %d points (%d candidates); lower min_purity or add rasters",
                        " ".join(map(str, key)), selected, wanted, candidates)
    return SampleResult(points=points, summary=summary)


def _summary(cands: pd.DataFrame, points: pd.DataFrame, cfg: SampleConfig) -> pd.DataFrame:
    keys = ["class", "province"] if cfg.per_province else ["class"]
    cands = cands[cands["province"].isin(cfg.provinces or list(PROVINCES))]
    cands = cands.assign(**{"class": [get_class(int(c)).name for c in cands["aci_code"]]})
    available = cands.groupby(keys).size().rename("candidates")
    selected = points.rename(columns={"label": "class"}).groupby(keys).size().rename("selected")
    index: pd.Index
    if cfg.per_province:
        provinces = cfg.provinces or sorted(cands["province"].unique())
        index = pd.MultiIndex.from_product([cfg.classes, provinces], names=keys)
    else:
        index = pd.Index(cfg.classes, name="class")
    out = pd.DataFrame(index=index).join(available).join(selected).fillna(0).astype(int)
    out.insert(0, "wanted", [cfg.quota_of(k[0] if isinstance(k, tuple) else k) for k in index])
    return out.reset_index()


def progress(items: Iterable, total: int, description: str) -> Iterable:
    """Iterate ``items`` with a transient progress bar on stderr (none for fewer than 4)."""
    from rich.console import Console
    from rich.progress import track

    return track(items, total=total, description=description, transient=True,
                 console=Console(stderr=True), disable=total < 4)
