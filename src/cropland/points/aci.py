"""Read Annual Crop Inventory (ACI) rasters window by window.

AAFC publishes the ACI as one 30 m raster of class codes per year. Three kinds of source
give the same reader interface (:class:`AciReader`), so sampling and labelling never care
where the pixels come from, and never hold more than one window in memory:

- a local GeoTIFF or COG (``RasterioAci("aci_2019_sk.tif")``),
- a remote COG by URL, read with HTTP range requests through GDAL's ``/vsicurl/``
  (``RasterioAci("https://host/aci_2019.tif")``),
- the zipped GeoTIFF that AAFC distributes, local or remote, read in place through GDAL's
  ``/vsizip/`` (``/vsizip//vsicurl/`` for a URL) without unpacking:
  ``RasterioAci("aci_2019.zip")`` opens the zip's one GeoTIFF, ``aci_2019.zip!dir/x.tif``
  names it (remotely, GDAL streams a deflated member up to the window it needs: better
  downloaded once),
- Earth Engine's ``AAFC/ACI`` image collection (``EarthEngineAci(2019, region)``), through
  the optional ``earthengine-api`` package (``pip install 'cropland[gee]'``), whose pixels
  are fetched with ``ee.data.computePixels`` one window at a time.

Windows are *boundless*: the part of a window beyond the raster is filled with the
reader's no-data value, which sampling treats like any missing pixel.
"""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from cropland.errors import CroplandError, PointsError, SourceError

log = logging.getLogger(__name__)

#: No-data value of the ACI rasters when a file does not declare one.
DEFAULT_NODATA = 0

#: GDAL block cache while reading (bytes): each chunk is read once, so a small cache that
#: holds a row of tiles is enough, and memory stays flat on province-sized rasters.
GDAL_CACHE_BYTES = 128 * 2**20

#: GDAL settings for reading a remote COG with range requests only.
REMOTE_GDAL_OPTIONS: dict[str, Any] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.zip,.ZIP",
    "GDAL_HTTP_MAX_RETRY": 3,
    "GDAL_HTTP_RETRY_DELAY": 1,
    "VSI_CACHE": True,
}


class AciReader(Protocol):
    """A raster of ACI class codes on a north-up grid in a projected CRS (metres)."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    nodata: int

    @property
    def year(self) -> int | None:
        """The ACI year, when known."""
        ...

    def read(self, window: Window) -> np.ndarray:
        """The class codes of ``window`` (rows x cols); outside the raster: ``nodata``."""
        ...

    def close(self) -> None:
        """Release the source."""
        ...


def resolution(reader: AciReader) -> float:
    """Pixel size of a reader in CRS units (square pixels are required)."""
    return abs(reader.transform.a)


def check_grid(reader: AciReader, name: str) -> None:
    """Refuse grids sampling cannot measure in metres."""
    if not reader.crs or not reader.crs.is_projected:
        raise PointsError(
            f"{name}: the ACI raster must be in a projected CRS (metres), got {reader.crs}; "
            "reproject it, e.g. gdalwarp -t_srs EPSG:3978"
        )
    t = reader.transform
    if t.b or t.d or not math.isclose(abs(t.a), abs(t.e), rel_tol=1e-6):
        raise PointsError(f"{name}: pixels must be square and north-up, got transform {t}")


def read_padded(reader: AciReader, window: Window, read_inside) -> np.ndarray:
    """Read the part of ``window`` inside the raster with ``read_inside`` and pad the rest."""
    row0, col0 = int(window.row_off), int(window.col_off)
    rows, cols = int(window.height), int(window.width)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + rows, reader.height), min(col0 + cols, reader.width)
    out = np.full((rows, cols), reader.nodata, dtype=np.int32)
    if r1 > r0 and c1 > c0:
        inside = read_inside(Window(c0, r0, c1 - c0, r1 - r0))
        out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = inside
    return out


class RasterioAci:
    """An ACI raster readable by GDAL: a local file, or a URL read with range requests."""

    def __init__(self, source: str | Path, year: int | None = None, band: int = 1):
        self.source = str(source)
        self.year = year
        self.band = band
        remote = REMOTE_GDAL_OPTIONS if _is_remote(self.source) else {}
        self._options = {"GDAL_CACHEMAX": GDAL_CACHE_BYTES, **remote}
        file = self.source.partition("!")[0]
        if not _is_remote(file) and not Path(file).exists():
            raise PointsError(f"ACI raster {file} does not exist; check the path")
        try:
            with self._env():
                self._ds = rasterio.open(gdal_path(self.source))
        except CroplandError:
            raise
        except Exception as e:  # noqa: BLE001  (GDAL errors come in many classes)
            raise SourceError(f"cannot open ACI raster {self.source}: {e}") from None
        self.crs = self._ds.crs
        self.transform = self._ds.transform
        self.width, self.height = self._ds.width, self._ds.height
        nodata = self._ds.nodatavals[band - 1]
        self.nodata = DEFAULT_NODATA if nodata is None else int(nodata)
        try:
            check_grid(self, self.source)
        except PointsError:
            self.close()
            raise

    def _env(self) -> rasterio.Env:
        """GDAL settings of this source, entered around each GDAL call (readers may overlap)."""
        return rasterio.Env(**self._options)

    @property
    def block_shape(self) -> tuple[int, int]:
        """Internal tile (or strip) shape, rows x cols."""
        return tuple(self._ds.block_shapes[self.band - 1])

    def read(self, window: Window) -> np.ndarray:
        with self._env():
            return read_padded(self, window, lambda w: self._ds.read(self.band, window=w))

    def close(self) -> None:
        self._ds.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RasterioAci({self.source!r}, year={self.year})"


def gdal_path(source: str) -> str:
    """The path GDAL opens for an ACI source; a zip (``x.zip`` or ``x.zip!member.tif``, local
    or a URL) is read in place through ``/vsizip/``."""
    archive, _, member = source.partition("!")
    if not archive.lower().endswith(".zip"):
        return source
    remote = _is_remote(archive)
    if not member:
        tifs = [n for n in _zip_members(archive, remote) if n.lower().endswith((".tif", ".tiff"))]
        if len(tifs) != 1:
            raise PointsError(f"{archive} holds {len(tifs)} GeoTIFFs ({', '.join(tifs[:5])}); "
                              f"name the one to read as {archive}!NAME.tif")
        member = tifs[0]
    inner = f"/vsicurl/{archive}" if remote else str(Path(archive).resolve())
    return f"/vsizip/{inner}/{member}"


def _zip_members(archive: str, remote: bool) -> list[str]:
    """The names in a zip, from its central directory (a few range requests when remote)."""
    try:
        if remote:
            from remotezip import RemoteZip

            with RemoteZip(archive) as z:
                return z.namelist()
        with zipfile.ZipFile(archive) as z:
            return z.namelist()
    except Exception as e:  # noqa: BLE001  (zip, HTTP and connection errors alike)
        raise SourceError(f"cannot list the files in {archive}: {e}") from None


def _is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "/vsicurl", "s3://", "gs://", "/vsis3"))


class EarthEngineAci:
    """Earth Engine's ``AAFC/ACI`` for one year, on a grid covering a lon/lat region.

    The grid is ``resolution`` m pixels in ``crs``, snapped to multiples of the resolution,
    covering ``region`` (west, south, east, north). Each :meth:`read` is one
    ``ee.data.computePixels`` request for the window (keep windows under 32768 pixels a
    side and 48 MB). Earth Engine must be authenticated; ``project`` is passed to
    ``ee.Initialize``.
    """

    COLLECTION = "AAFC/ACI"
    BAND = "landcover"

    def __init__(
        self,
        year: int,
        region: tuple[float, float, float, float],
        crs: str = "EPSG:3978",
        resolution: float = 30.0,
        project: str | None = None,
    ):
        self.ee = _import_ee()
        if project is not None:
            self.ee.Initialize(project=project)
        self.year = year
        self.crs = CRS.from_user_input(crs)
        self.nodata = DEFAULT_NODATA
        self.transform, self.width, self.height = _grid(region, self.crs, resolution)
        self.image = (
            self.ee.ImageCollection(self.COLLECTION)
            .filterDate(f"{year}-01-01", f"{year + 1}-01-01")
            .first()
            .select(self.BAND)
        )
        check_grid(self, f"{self.COLLECTION} {year}")

    def read(self, window: Window) -> np.ndarray:
        return read_padded(self, window, self._compute_pixels)

    def _compute_pixels(self, window: Window) -> np.ndarray:
        t = self.transform @ Affine.translation(window.col_off, window.row_off)
        request = {
            "expression": self.image,
            "fileFormat": "NUMPY_NDARRAY",
            "grid": {
                "dimensions": {"width": int(window.width), "height": int(window.height)},
                "affineTransform": {
                    "scaleX": t.a, "shearX": t.b, "translateX": t.c,
                    "shearY": t.d, "scaleY": t.e, "translateY": t.f,
                },
                "crsCode": self.crs.to_string(),
            },
        }
        try:
            pixels = self.ee.data.computePixels(request)
        except Exception as e:  # noqa: BLE001  (ee.EEException and transport errors)
            raise SourceError(f"Earth Engine {self.COLLECTION} {self.year}: {e}") from None
        if pixels.dtype.names:  # a structured array, one field per band
            pixels = pixels[self.BAND]
        return np.asarray(pixels)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"EarthEngineAci({self.year}, {self.width}x{self.height} px, {self.crs})"


def _import_ee():
    try:
        import ee
    except ImportError:
        raise PointsError(
            "Earth Engine sources need the earthengine-api package: pip install 'cropland[gee]', "
            "then authenticate with `earthengine authenticate`"
        ) from None
    return ee


def _grid(
    region: tuple[float, float, float, float], crs: CRS, res: float
) -> tuple[Affine, int, int]:
    """A north-up grid of ``res`` pixels in ``crs`` covering a lon/lat region."""
    from pyproj import Transformer

    west, south, east, north = region
    if not (west < east and south < north):
        raise PointsError(f"region must be (west, south, east, north), got {region}")
    to_crs = Transformer.from_crs("EPSG:4326", crs.to_wkt(), always_xy=True)
    left, bottom, right, top = to_crs.transform_bounds(west, south, east, north, densify_pts=21)
    left, bottom = math.floor(left / res) * res, math.floor(bottom / res) * res
    right, top = math.ceil(right / res) * res, math.ceil(top / res) * res
    width, height = round((right - left) / res), round((top - bottom) / res)
    return Affine(res, 0.0, left, 0.0, -res, top), width, height


def open_aci(source: str | Path, year: int | None = None) -> RasterioAci:
    """Open a local or remote ACI raster (``http(s)://`` URLs are read with range requests)."""
    return RasterioAci(source, year=year)


def iter_chunks(
    reader: AciReader, chunk_px: int, halo: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Tile the raster in ``chunk_px`` squares; yield ``(row0, col0, pixels)``.

    ``pixels`` covers the chunk grown by ``halo`` pixels on every side (boundless), so a
    window of ``2 * halo + 1`` pixels around any pixel of the chunk is inside it.
    """
    for row0 in range(0, reader.height, chunk_px):
        for col0 in range(0, reader.width, chunk_px):
            rows = min(chunk_px, reader.height - row0)
            cols = min(chunk_px, reader.width - col0)
            window = Window(col0 - halo, row0 - halo, cols + 2 * halo, rows + 2 * halo)
            yield row0, col0, reader.read(window)


def n_chunks(reader: AciReader, chunk_px: int) -> int:
    """How many chunks :func:`iter_chunks` yields."""
    return math.ceil(reader.height / chunk_px) * math.ceil(reader.width / chunk_px)
