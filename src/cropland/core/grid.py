"""Patch geometry: the square of ``size`` x ``size`` pixels centred on a point."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from affine import Affine
from pyproj import CRS, Transformer

DEFAULT_CRS = "EPSG:3978"  # Canada Atlas Lambert


@cache
def _to_crs(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


@cache
def _to_lonlat(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def project(lon, lat, crs: str = DEFAULT_CRS):  # noqa: ANN001, ANN201 (floats or arrays)
    """WGS84 longitudes/latitudes (floats or arrays) to ``crs`` coordinates: ``(x, y)``."""
    return _to_crs(crs).transform(lon, lat)


@dataclass(frozen=True)
class PatchGrid:
    """A north-up pixel grid: ``size`` x ``size`` pixels of ``resolution`` m in ``crs``.

    The grid is centred exactly on the point: with an even size (64) the point lies on the
    corner shared by the four central pixels, with an odd size (65) at the centre of the
    central pixel.
    """

    crs: str
    x: float  # centre, in crs units
    y: float
    size: int = 64
    resolution: float = 10.0

    @classmethod
    def around(
        cls,
        lon: float,
        lat: float,
        size: int = 64,
        resolution: float = 10.0,
        crs: str = DEFAULT_CRS,
    ) -> PatchGrid:
        """The grid centred on a WGS84 longitude/latitude."""
        x, y = project(lon, lat, crs)
        return cls(crs=crs, x=float(x), y=float(y), size=size, resolution=resolution)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.size, self.size)

    @property
    def half_extent(self) -> float:
        return self.size * self.resolution / 2

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in ``crs``."""
        h = self.half_extent
        return (self.x - h, self.y - h, self.x + h, self.y + h)

    @property
    def transform(self) -> Affine:
        left, _, _, top = self.bounds
        return Affine(self.resolution, 0.0, left, 0.0, -self.resolution, top)

    @property
    def rasterio_crs(self) -> CRS:
        """``crs`` as a pyproj CRS, which rasterio accepts (core does not import GDAL)."""
        return CRS.from_user_input(self.crs)

    def bounds_lonlat(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        """(west, south, east, north) in WGS84 of the grid grown by ``margin`` metres."""
        left, bottom, right, top = self.bounds
        return _to_lonlat(self.crs).transform_bounds(
            left - margin, bottom - margin, right + margin, top + margin, densify_pts=21
        )
