"""Figures of a points table: a PNG map, an interactive HTML map, counts per class/province.

Both maps draw the province boundaries shipped with the province lookup
(:mod:`cropland.points.provinces`) and colour each point by its class's ACI legend colour.
The HTML map is a single self-contained file (plotly, with its JavaScript inlined): it
opens offline, with hover details, zoom, and a legend that hides or shows each class.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cropland.core.classes import get_class
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


def _hex(label: str) -> str:
    r, g, b = get_class(label).color
    return f"#{r:02x}{g:02x}{b:02x}"


def _extent(points: pd.DataFrame, margin: float = 1.0) -> tuple[float, float, float, float]:
    return (points["lon"].min() - margin, points["lon"].max() + margin,
            points["lat"].min() - margin, points["lat"].max() + margin)


def _outlines(extent: tuple[float, float, float, float]) -> list[tuple[str, np.ndarray, object]]:
    """(code, exterior rings as an (n, 2) array with NaN breaks, label point) per province
    that meets ``extent``."""
    import shapely

    from cropland.points.provinces import boundaries

    west, east, south, north = extent
    view = shapely.box(west, south, east, north)
    out = []
    for code, polygon in zip(boundaries().codes, boundaries().polygons):
        if code not in PROVINCES or not polygon.intersects(view):
            continue
        clipped = shapely.simplify(polygon.intersection(view), OUTLINE_TOLERANCE)
        rings = [np.vstack([np.asarray(p.exterior.coords), [np.nan, np.nan]])
                 for p in getattr(clipped, "geoms", [clipped]) if p.geom_type == "Polygon"]
        if rings:
            out.append((code, np.vstack(rings), clipped.representative_point()))
    return out


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
    for code, ring, where in _outlines(extent):
        ax.plot(ring[:, 0], ring[:, 1], color="0.55", linewidth=0.6, zorder=1)
        ax.annotate(code, (where.x, where.y), color="0.35", fontsize=9, ha="center",
                    va="center", zorder=2)
    for label, group in per_point.groupby("label", sort=True):
        ax.scatter(group["lon"], group["lat"], s=9, color=_hex(label), edgecolors="0.2",
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
        fig.savefig(tmp, format="png", dpi=dpi)
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
        lambda s: ", ".join(f"{y}: {lb}" for y, lb in zip(points.loc[s.index, "year"], s)))
    fig = go.Figure()
    for code, ring, where in _outlines(_extent(per_point)):
        fig.add_trace(go.Scatter(x=ring[:, 0], y=ring[:, 1], mode="lines", hoverinfo="skip",
                                 line={"color": "#999", "width": 1}, showlegend=False))
        fig.add_annotation(x=where.x, y=where.y, text=code, showarrow=False,
                           font={"color": "#666"})
    for label, group in per_point.groupby("label", sort=True):
        text = [f"point {p} ({pr})<br>{years[p]}<br>{x:.5f}, {y:.5f}" for p, pr, x, y in
                zip(group["point_id"], group["province"], group["lon"], group["lat"])]
        fig.add_trace(go.Scatter(
            x=group["lon"], y=group["lat"], mode="markers", name=f"{label} ({len(group)})",
            text=text, hoverinfo="text",
            marker={"color": _hex(label), "size": 6, "line": {"color": "#333", "width": 0.5}},
        ))
    fig.update_layout(
        title=title or f"{len(per_point)} points", template="plotly_white",
        xaxis_title="longitude (°)", yaxis_title="latitude (°)",
        yaxis={"scaleanchor": "x",
               "scaleratio": float(1 / np.cos(np.radians(per_point["lat"].mean())))},
        legend={"title": "class (points)"},
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)
    return path
