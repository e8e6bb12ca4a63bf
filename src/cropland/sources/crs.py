"""Coordinate transformations shared by reading threads: one pyproj transformer per CRS pair."""

from __future__ import annotations

import threading
from functools import cache

from pyproj import Transformer
from rasterio.crs import CRS


class LockedTransformer:
    """A pyproj transformer shared by threads (pyproj transformers are not thread-safe)."""

    def __init__(self, src: str, dst: str) -> None:
        self._transformer = Transformer.from_crs(src, dst, always_xy=True)
        self._lock = threading.Lock()

    def transform(self, x, y):
        with self._lock:
            return self._transformer.transform(x, y)

    def transform_bounds(self, left: float, bottom: float, right: float, top: float,
                         densify_pts: int = 21) -> tuple[float, float, float, float]:
        with self._lock:
            return self._transformer.transform_bounds(left, bottom, right, top, densify_pts=densify_pts)


_transformers_lock = threading.Lock()


@cache
def _cached_transformer(src: str, dst: str) -> LockedTransformer:
    return LockedTransformer(src, dst)


def transformer(src: str, dst: str) -> LockedTransformer:
    """The process-wide transformer from ``src`` to ``dst`` (created once)."""
    with _transformers_lock:
        return _cached_transformer(src, dst)


@cache
def rio_crs(crs: str) -> CRS:
    """A rasterio CRS from any user input (``EPSG:32614``, WKT), parsed once."""
    return CRS.from_user_input(crs)
