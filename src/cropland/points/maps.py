"""Figures of a points table: a PNG map, an interactive HTML map, counts per class/province.

Both maps draw the province boundaries shipped with the province lookup
(:mod:`cropland.points.provinces`) and give each class a distinct colour (the ACI legend's
colours are too alike for crops: barley, oat and millet are all yellow-green).
The HTML map is a single self-contained file (plotly, with its JavaScript inlined): it
opens offline, with hover details, zoom, and a legend that hides or shows each class.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from cropland.core.provinces import PROVINCES
from cropland.errors import PointsError
from cropland.io import atomic_path

log = logging.getLogger(__name__)

#: Degrees of simplification of the drawn boundaries (about 2 km).
OUTLINE_TOLERANCE = 0.02


def counts(points: pd.DataFrame) -> pd.DataFrame:
    """Points per class (rows) and province (columns), with totals; one count per point-year."""
    table = pd.crosstab(points["label"], points["province"], margins=True, margins_name="total")
    return table.rename_axis(index="class", columns=None)


def class_colors(labels) -> dict[str, str]:
    """A distinct colour per class (matplotlib's tab10, or tab20 beyond 10 classes)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    names = sorted(set(labels))
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: to_hex(cmap(i % cmap.N)) for i, name in enumerate(names)}


def _extent(points: pd.DataFrame, margin: float = 1.0) -> tuple[float, float, float, float]:
    return (points["lon"].min() - margin, points["lon"].max() + margin,
            points["lat"].min() - margin, points["lat"].max() + margin)


@cache
def _province_outlines() -> tuple[tuple[str, np.ndarray, tuple[float, float]], ...]:
    """(code, rings as an (n, 2) lon/lat array with NaN breaks, label position) per province."""
    import shapely

    from cropland.points.provinces import boundaries

    out = []
    for code, polygon in zip(boundaries().codes, boundaries().polygons, strict=True):
        if code not in PROVINCES:
            continue
        simple = shapely.simplify(polygon, OUTLINE_TOLERANCE, preserve_topology=False)
        rings = [np.vstack([np.asarray(p.exterior.coords), [np.nan, np.nan]])
                 for p in getattr(simple, "geoms", [simple])]
        where = simple.representative_point()
        out.append((code, np.vstack(rings), (where.x, where.y)))
    return tuple(out)


def _outlines(extent: tuple[float, float, float, float]):
    """The province outlines that reach into ``extent`` (west, east, south, north)."""
    west, east, south, north = extent
    return [(code, ring, where) for code, ring, where in _province_outlines()
            if np.nanmin(ring[:, 0]) < east and np.nanmax(ring[:, 0]) > west
            and np.nanmin(ring[:, 1]) < north and np.nanmax(ring[:, 1]) > south]


def plot_map(points: pd.DataFrame, path: str | Path, title: str | None = None,
             dpi: int = 150) -> Path:
    """Write a PNG map of the points coloured by class, with province outlines and names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if points.empty:
        raise PointsError("no points to map; the points table is empty")
    per_point = points.drop_duplicates("point_id")
    extent = _extent(per_point)
    fig = Figure(figsize=(11, 6.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = class_colors(per_point["label"])
    for code, ring, (x, y) in _outlines(extent):
        ax.plot(ring[:, 0], ring[:, 1], color="0.55", linewidth=0.6, zorder=1)
        if extent[0] < x < extent[1] and extent[2] < y < extent[3]:
            ax.annotate(code, (x, y), color="0.3", fontsize=10, fontweight="bold",
                        ha="center", va="center", zorder=4)
    for label, group in per_point.groupby("label", sort=True):
        ax.scatter(group["lon"], group["lat"], s=9, color=colors[str(label)], edgecolors="0.2",
                   linewidths=0.2, label=f"{label} ({len(group)})", zorder=3)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect(1 / np.cos(np.radians(per_point["lat"].mean())))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.grid(color="0.9", linewidth=0.5)
    ax.legend(loc="lower left", fontsize=7, markerscale=1.5, framealpha=0.9)
    years = sorted(points["year"].unique())
    ax.set_title(title or f"{len(per_point)} points, {', '.join(map(str, years))}")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def html_map(points: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Write a self-contained interactive HTML map (works offline: no CDN, no tiles)."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise PointsError("the HTML map needs plotly: pip install 'cropland[points]'") from None
    if points.empty:
        raise PointsError("no points to map; the points table is empty")
    per_point = points.drop_duplicates("point_id")
    years = points.groupby("point_id")["label"].agg(
        lambda s: ", ".join(f"{y}: {lb}" for y, lb in zip(points.loc[s.index, "year"], s, strict=True)))
    colors = class_colors(per_point["label"])
    extent = _extent(per_point)
    fig = go.Figure()
    for code, ring, (x, y) in _outlines(extent):
        fig.add_trace(go.Scatter(x=ring[:, 0], y=ring[:, 1], mode="lines", hoverinfo="skip",
                                 line={"color": "#999", "width": 1}, showlegend=False))
        fig.add_annotation(x=x, y=y, text=f"<b>{code}</b>", showarrow=False,
                           font={"color": "#555"})
    for label, group in per_point.groupby("label", sort=True):
        text = [f"point {p} ({pr})<br>{years[p]}<br>{x:.5f}, {y:.5f}" for p, pr, x, y in
                zip(group["point_id"], group["province"], group["lon"], group["lat"], strict=True)]
        fig.add_trace(go.Scatter(
            x=group["lon"], y=group["lat"], mode="markers", name=f"{label} ({len(group)})",
            text=text, hoverinfo="text",
            marker={"color": colors[str(label)], "size": 6, "line": {"color": "#333", "width": 0.5}},
        ))
    fig.update_layout(
        title=title or f"{len(per_point)} points", template="plotly_white",
        xaxis={"title": "longitude (°)", "range": [extent[0], extent[1]]},
        yaxis={"title": "latitude (°)", "scaleanchor": "x", "range": [extent[2], extent[3]],
               "scaleratio": float(1 / np.cos(np.radians(per_point["lat"].mean())))},
        legend={"title": "class (points)"},
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)
    return path
