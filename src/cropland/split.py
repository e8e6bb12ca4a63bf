"""Training/validation/test splits grouped by point, stratified by class.

A point is in exactly one split for every year and image type, so no field is seen in
training one year and tested another (a defect of the original code). Points are
stratified by their most frequent class over the years (ties: the alphabetically first
class); within each class the points are shuffled by a generator seeded with the seed and
the class name, and the split sizes are rounded with the largest-remainder method, so each
split's share of a class's points is within ``1 / n`` of its fraction (``n`` points in the
class). With 70/15/15 that is within 2 percentage points for every class of 20 points or
more, except 22, 23, 24, 29 and 31 points, sizes for which no integer split is that close.

Points whose patches overlap (two ids at one place, or centres closer than a patch) show the
same pixels, so they are split as one: each group of such points (:func:`location_groups`)
is in one split, and the build warns about them.

Labels change between years, so a point also brings images of other classes into its split.
A last, deterministic step swaps points of the same stratum between splits (which keeps the
guarantee above) while that brings each class's share of point-years in every split closer
to the fractions, so the images per class and split follow 70/15/15 too.

The file (``splits.json``) is written and read by :mod:`cropland.dataset`.
"""

from __future__ import annotations

import logging
import math
import zlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cropland.core.grid import DEFAULT_CRS, project
from cropland.dataset import SPLIT_NAMES, Splits

log = logging.getLogger(__name__)

#: Side of a patch in metres when none is given: 65 px at 10 m (covers the published 64 and 65).
DEFAULT_PATCH_EXTENT = 650.0

if TYPE_CHECKING:  # no pydantic at run time: training machines read splits without it
    from cropland.config import SplitConfig


def majority_class(points: pd.DataFrame) -> pd.Series:
    """Each point's most frequent label over its years; ties go to the first name."""
    counts = points.groupby(["point_id", "label"]).size().rename("n").reset_index()
    counts = counts.sort_values(["point_id", "n", "label"], ascending=[True, False, True])
    return counts.drop_duplicates("point_id").set_index("point_id")["label"]


def largest_remainder(n: int, fractions: list[float]) -> list[int]:
    """Split ``n`` into integer counts proportional to ``fractions`` (Hamilton's method).

    Each count is the floor of its quota, plus one for the largest fractional remainders
    (ties: the earlier split) until the counts sum to ``n``.
    """
    quotas = [n * f for f in fractions]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _class_rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(label.encode())])


def _stratified(strata: pd.Series, shares: list[float], seed: int) -> pd.Series:
    """Split index (0, 1, 2) per point: shuffled within its stratum, largest-remainder sizes."""
    out = []
    for label, members in strata.groupby(strata, sort=True):
        point_ids = np.sort(members.index.to_numpy())
        _class_rng(seed, str(label)).shuffle(point_ids)
        counts = largest_remainder(len(point_ids), shares)
        out.append(pd.Series(np.repeat(np.arange(len(shares)), counts), index=point_ids))
    return pd.concat(out).sort_index()


def _distinct_rows(
    rows: np.ndarray, pattern: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``points`` (``pattern`` numbers them), in order of first
    appearance, and the first point of each.

    Points with equal rows are interchangeable in a swap, and a point has few years, so there
    are few distinct rows whatever the number of points: the swap search stays linear.
    """
    _, first = np.unique(pattern[points], return_index=True)
    first.sort()
    return rows[points[first]], points[first]


def _best_swap(
    members: np.ndarray, split: np.ndarray, rows: np.ndarray, pattern: np.ndarray,
    gap: np.ndarray, weight: np.ndarray,
) -> tuple[float, int, int]:
    """The swap of two points of one stratum between splits that most lowers the imbalance.

    The imbalance is ``sum(weight * gap**2)`` with ``gap`` (splits x classes) the point-years
    per split and class minus their target. Swapping ``p`` (split ``a``) with ``q`` (split
    ``b``) moves ``d = rows[q] - rows[p]`` into ``a`` and out of ``b``, changing it by
    ``2 w.d (gap_a - gap_b) + 2 w.d**2``. Returns (change, p, q); change 0 when none helps.
    """
    best = (0.0, -1, -1)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        pa, pb = members[split[members] == a], members[split[members] == b]
        if not len(pa) or not len(pb):
            continue
        g = weight * (gap[a] - gap[b])
        ra, pa = _distinct_rows(rows, pattern, pa)
        rb, pb = _distinct_rows(rows, pattern, pb)
        linear = 2 * ((rb @ g)[None, :] - (ra @ g)[:, None])
        square = 2 * ((ra**2 @ weight)[:, None] + (rb**2 @ weight)[None, :]
                      - 2 * (ra * weight) @ rb.T)
        change = linear + square
        i, j = np.unravel_index(np.argmin(change), change.shape)
        if change[i, j] < best[0] - 1e-12:
            best = (float(change[i, j]), int(pa[i]), int(pb[j]))
    return best


def _balance_classes(
    points: pd.DataFrame, strata: pd.Series, split: pd.Series, shares: list[float]
) -> pd.Series:
    """Swap points of the same stratum between splits while it evens every class's shares.

    Strata sizes per split are unchanged; the share of each class's point-years (hence of
    its images) in each split moves towards the fractions, although labels change between
    years. Greedy and deterministic: per pass, each stratum makes its best improving swap.
    """
    per_label = points.groupby(["point_id", "label"]).size().unstack(fill_value=0)
    rows = per_label.reindex(split.index, fill_value=0).to_numpy(dtype=np.float64)
    pattern = np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
    totals = rows.sum(axis=0)
    weight = 1.0 / totals**2  # squared error of shares, not of counts
    assigned = split.to_numpy().copy()
    gap = np.stack([rows[assigned == s].sum(axis=0) for s in range(3)])
    gap -= np.outer(shares, totals)
    stratum_members = [
        np.flatnonzero(strata.reindex(split.index).to_numpy() == label)
        for label in sorted(strata.unique())
    ]
    for _ in range(10 * len(assigned)):  # bound; in practice a few swaps per stratum
        swapped = False
        for members in stratum_members:
            change, p, q = _best_swap(members, assigned, rows, pattern, gap, weight)
            if p < 0:
                continue
            a, b = assigned[p], assigned[q]
            gap[a] += rows[q] - rows[p]
            gap[b] -= rows[q] - rows[p]
            assigned[p], assigned[q] = b, a
            swapped = True
        if not swapped:
            break
    return pd.Series(assigned, index=split.index)


def location_groups(
    points: pd.DataFrame, patch_extent: float = DEFAULT_PATCH_EXTENT, crs: str = DEFAULT_CRS
) -> pd.Series:
    """Point id -> the smallest id of the points its patch overlaps, directly or through others.

    Two patches of side ``patch_extent`` (metres of ``crs``, north-up, centred on the points)
    overlap when the points are closer than that on both axes. Without ``lon``/``lat``
    columns every point is a group of its own.
    """
    per_point = points.drop_duplicates("point_id").sort_values("point_id")
    ids = per_point["point_id"].to_numpy()
    if not {"lon", "lat"} <= set(points.columns) or len(ids) < 2:
        return pd.Series(ids, index=ids)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xy = np.column_stack(project(per_point["lon"].to_numpy(), per_point["lat"].to_numpy(), crs))
    pairs = cKDTree(xy).query_pairs(patch_extent * (1 - 1e-9), p=np.inf, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(ids),) * 2)
    _, component = connected_components(graph, directed=False)
    smallest = pd.Series(ids).groupby(component).transform("min").to_numpy()
    return pd.Series(smallest, index=ids)


def _warn_about_shared_locations(groups: pd.Series) -> None:
    shared = [sorted(int(p) for p in members) for _, members in
              groups.index.to_series().groupby(groups.to_numpy()) if len(members) > 1]
    if shared:
        listed = ", ".join(str(g) for g in shared[:10]) + (", ..." if len(shared) > 10 else "")
        log.warning("%d groups of points are at the same place or their patches overlap, so they "
                    "show the same pixels; each group is kept in one split: %s (remove the "
                    "duplicates from the points table to silence this)", len(shared), listed)


def make_splits(
    points: pd.DataFrame, fractions: SplitConfig, seed: int,
    patch_extent: float = DEFAULT_PATCH_EXTENT, crs: str = DEFAULT_CRS,
) -> Splits:
    """Assign every point of a points table (one row per point and year) to one split.

    Args:
        points: needs columns ``point_id`` and ``label``; with ``lon`` and ``lat``, points
            whose patches overlap share a split (see :func:`location_groups`).
        fractions: training/validation/test fractions.
        seed: the same seed and points give the same splits.
        patch_extent: side of a patch in metres of ``crs`` (patch size x resolution).
        crs: the patches' CRS.
    """
    shares = [getattr(fractions, name) for name in SPLIT_NAMES]
    groups = location_groups(points, patch_extent, crs)
    _warn_about_shared_locations(groups)
    return Splits(_assign(points, shares, seed, groups), seed,
                  dict(zip(SPLIT_NAMES, shares, strict=True)))


def extend_splits(
    splits: Splits, points: pd.DataFrame,
    patch_extent: float = DEFAULT_PATCH_EXTENT, crs: str = DEFAULT_CRS,
) -> Splits:
    """``splits`` plus the points of ``points`` it does not know (a build that gained years or
    points): known points keep their split, and so do new points whose patches overlap a known
    one's; the others are split among themselves, stratified and balanced as by
    :func:`make_splits`, with the same seed and fractions."""
    known = splits.assignments
    if points["point_id"].isin(list(known)).all():
        return splits
    groups = location_groups(points, patch_extent, crs)
    _warn_about_shared_locations(groups)
    joined: dict[int, str] = {}  # group -> the split of its first known point
    for p, g in zip(groups.index, groups, strict=True):
        if int(p) in known:
            joined.setdefault(int(g), known[int(p)])
    new = groups[~groups.index.isin(list(known))]
    added = {int(p): joined[int(g)] for p, g in zip(new.index, new, strict=True) if int(g) in joined}
    alone = new[~new.isin(list(joined))]  # new points of new groups: split among themselves
    if len(alone):
        shares = [splits.fractions[name] for name in SPLIT_NAMES]
        added |= _assign(points[points["point_id"].isin(alone.index)], shares, splits.seed, alone)
    return Splits({**known, **added}, splits.seed, splits.fractions)


def _assign(
    points: pd.DataFrame, shares: list[float], seed: int, groups: pd.Series
) -> dict[int, str]:
    """Split the groups (``groups``: point id -> group id) as if they were points, then give
    each point its group's split."""
    grouped = points.assign(point_id=points["point_id"].map(groups))
    strata = majority_class(grouped)
    split = _balance_classes(grouped, strata, _stratified(strata, shares, seed), shares)
    return {int(p): SPLIT_NAMES[split[g]] for p, g in zip(groups.index, groups, strict=True)}
