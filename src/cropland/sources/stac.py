"""Sentinel-2 from any STAC API (Earth Search, Planetary Computer, your own), read as COGs.

Search goes through pystac-client; pixels are read with rasterio over HTTP range requests
(``/vsicurl``, :data:`~cropland.sources.http.COG_GDAL_ENV`), so only the tiles under the
patches travel. A scene is read once for all the patch grids of a job: each band's file is
opened once and GDAL's block cache serves the tiles several patches share.

**Baseline offset rule** (:func:`dn_offset`): the DN offset of a scene is

1. ``0`` when the item says ``earthsearch:boa_offset_applied: true`` (the pixels were
   already shifted to the pre-04.00 scale);
2. else ``offset / scale`` of the band asset's ``raster:bands`` when that offset is not 0
   (``sentinel-2-c1-l2a``: ``-0.1 / 0.0001 = -1000``);
3. else ``-1000`` when ``s2:processing_baseline`` is ``04.00`` or later (Planetary Computer);
4. else ``0``.

The offset rides on :attr:`Scene.offset` and is applied once, in
:func:`~cropland.sources.masks.to_reflectance`.

**Masks**: Level-2A uses the SCL asset; Level-1C the QA60 asset or, with
``mask: cloud-probability``, a cloud-probability asset (clear below the threshold).
``mask: none`` keeps every pixel with data (for catalogues without a mask layer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Literal

import numpy as np
import rasterio
from affine import Affine
from pydantic import Field, model_validator
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window, from_bounds
from rasterio.errors import RasterioError

from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.errors import ConfigError, SourceError
from cropland.sources.base import Level, Scene, ScenePatches, Source, SourceOptions, register_source
from cropland.sources.http import COG_GDAL_ENV, TransientError, host_slot, retry_call
from cropland.sources.masks import qa60_masks, scl_masks, to_reflectance

log = logging.getLogger(__name__)

EARTH_SEARCH_BANDS: dict[str, str] = {
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge1",
    "B6": "rededge2", "B7": "rededge3", "B8": "nir", "B8A": "nir08", "B9": "nir09",
    "B11": "swir16", "B12": "swir22", "SCL": "scl",
}
PLANETARY_COMPUTER_BANDS: dict[str, str] = {
    **{b: f"B{b[1:]:0>2}" for b in BAND_NAMES}, "SCL": "SCL",
}

#: Ready catalogue settings: API URL, collection per level, asset keys, URL signing.
CATALOGUES: dict[str, dict[str, Any]] = {
    "earth-search": {
        "url": "https://earth-search.aws.element84.com/v1",
        "collections": {"L2A": "sentinel-2-l2a", "L1C": "sentinel-2-l1c"},
        "bands": EARTH_SEARCH_BANDS, "signing": "none",
    },
    "earth-search-c1": {
        "url": "https://earth-search.aws.element84.com/v1",
        "collections": {"L2A": "sentinel-2-c1-l2a", "L1C": "sentinel-2-c1-l1c"},
        "bands": EARTH_SEARCH_BANDS, "signing": "none",
    },
    "planetary-computer": {
        "url": "https://planetarycomputer.microsoft.com/api/stac/v1",
        "collections": {"L2A": "sentinel-2-l2a"},
        "bands": PLANETARY_COMPUTER_BANDS, "signing": "planetary-computer",
    },
}
BASELINE_OFFSET = -1000.0
#: Options that change how pixels travel, not which pixels: left out of the provenance.
TRANSPORT_OPTIONS = frozenset({"max_connections_per_host", "read_threads", "retries", "timeout",
                               "page_size", "sas_url"})


class ItemOptions(SourceOptions):
    """Options of every source that reads STAC-shaped items (STAC API, local catalogue)."""

    bands: dict[str, str] = Field(
        default_factory=dict,
        description="Asset key of each band (B1..B12, SCL, QA60, CLOUD_PROB); merged over the preset.")
    mask: Literal["auto", "scl", "qa60", "cloud-probability", "none"] = Field(
        "auto", description="Cloud mask layer; auto: SCL for L2A, QA60 for L1C.")
    cloud_probability_threshold: float = Field(
        40.0, ge=0, le=100, description="With mask: cloud-probability, cloudy at or above this %.")
    cloud_property: str = Field("eo:cloud_cover", description="Item property of the scene cloud %.")
    max_connections_per_host: int = Field(8, gt=0, description="Concurrent requests per host.")
    read_threads: int = Field(8, gt=0, description="Band files read in parallel per scene.")
    retries: int = Field(6, gt=0, description="Attempts per request before the job fails.")
    timeout: float = Field(60.0, gt=0, description="Seconds before a request times out.")


class StacOptions(ItemOptions):
    """Options of the STAC source. A ``catalogue`` preset fills what is left out."""

    catalogue: Literal["earth-search", "earth-search-c1", "planetary-computer"] | None = Field(
        None, description="Ready settings for a public catalogue.")
    url: str | None = Field(None, description="STAC API root URL (overrides the preset).")
    collection: str | None = Field(None, description="Collection id (overrides the preset).")
    signing: Literal["none", "planetary-computer"] | None = Field(
        None, description="URL signing of asset hrefs (Planetary Computer SAS tokens).")
    sas_url: str = Field("https://planetarycomputer.microsoft.com/api/sas/v1/token",
                         description="SAS token endpoint (planetary-computer signing).")
    page_size: int = Field(100, gt=0, description="Items per search page.")

    @model_validator(mode="after")
    def _needs_url(self) -> StacOptions:
        if self.catalogue is None and self.url is None:
            raise ValueError("give a catalogue preset (earth-search, earth-search-c1, "
                             "planetary-computer) or a url")
        return self


def dn_offset(item: dict, asset_key: str) -> float:
    """The DN offset of an item's pixels (see the module docstring for the rule)."""
    props = item.get("properties", {})
    if props.get("earthsearch:boa_offset_applied") is True:
        return 0.0
    bands = item.get("assets", {}).get(asset_key, {}).get("raster:bands") or [{}]
    if bands[0].get("offset"):
        return float(round(bands[0]["offset"] / bands[0].get("scale", 1e-4)))
    baseline = props.get("s2:processing_baseline")
    if baseline is not None and float(baseline) >= 4.0:
        return BASELINE_OFFSET
    return 0.0


class ItemReader(Source):
    """What every STAC-shaped source shares: items to scenes, and scene reads."""

    options: ItemOptions

    def __init__(self, level: Level = "L2A", options: SourceOptions | None = None,
                 resampling: str = "bilinear") -> None:
        super().__init__(level, options, resampling)
        self.bands = self._band_keys()
        self.mask = self._mask_kind()

    def describe(self) -> dict[str, Any]:
        """Provenance without the transport settings (they do not change the pixels)."""
        return {k: v for k, v in super().describe().items() if k not in TRANSPORT_OPTIONS}

    def _preset(self) -> dict[str, Any]:
        return CATALOGUES.get(getattr(self.options, "catalogue", None) or "", {})

    def _band_keys(self) -> dict[str, str]:
        return {b: b for b in BAND_NAMES} | self._preset().get("bands", {}) | self.options.bands

    def _mask_kind(self) -> str:
        mask = self.options.mask
        if mask == "auto":
            mask = "scl" if self.level == "L2A" else "qa60"
        return mask

    @property
    def _mask_layer(self) -> str | None:
        return {"scl": "SCL", "qa60": "QA60", "cloud-probability": "CLOUD_PROB"}.get(self.mask)

    # -- items -> scenes -----------------------------------------------------------------
    def scene_of(self, item: dict) -> Scene | None:
        """The scene of a STAC item, or None when it lacks a band or its mask."""
        assets = item.get("assets", {})
        wanted = list(BAND_NAMES) + ([self._mask_layer] if self._mask_layer else [])
        missing = [b for b in wanted if self.bands.get(b, b) not in assets]
        if missing:
            log.warning("item %s lacks %s (asset keys %s); skipped", item["id"],
                        missing, [self.bands.get(b, b) for b in missing])
            return None
        props = item["properties"]
        hrefs = {b: assets[self.bands.get(b, b)]["href"] for b in wanted}
        return Scene(
            id=item["id"], datetime=_parse_time(props["datetime"]).replace(tzinfo=None),
            cloud_cover=float(props.get(self.options.cloud_property, 0.0)), level=self.level,
            bbox=tuple(item["bbox"]), offset=dn_offset(item, self.bands["B4"]),
            properties={"assets": hrefs, "collection": item.get("collection"),
                        "processing_baseline": props.get("s2:processing_baseline")},
        )

    def keep(self, scene: Scene, start: datetime, end: datetime, max_cloud: float) -> bool:
        """The scene filter: acquired in [start, end) with cloud cover below ``max_cloud``."""
        return start <= scene.datetime < end and scene.cloud_cover < max_cloud

    # -- pixels --------------------------------------------------------------------------
    def read(self, scene: Scene, grids: Sequence[PatchGrid]) -> ScenePatches:
        hrefs: dict[str, str] = scene.properties["assets"]
        names = list(BAND_NAMES) + ([self._mask_layer] if self._mask_layer else [])
        started = time.perf_counter()
        with ThreadPoolExecutor(min(self.options.read_threads, len(names))) as pool:  # I/O bound
            windows = dict(zip(names, pool.map(
                lambda name: self._read_windows(scene, hrefs[name], grids), names), strict=True))
        n, size = len(grids), grids[0].size if grids else 0
        dn = np.full((n, 12, size, size), np.nan, np.float32)
        mask = np.zeros((n, size, size), np.float32)
        TIMINGS.add("fetch", time.perf_counter() - started)
        started = time.perf_counter()
        for k, grid in enumerate(grids):
            bands = {b: windows[b][k] for b in BAND_NAMES}
            for idx, out in _resample_groups(bands, grid, self.resampling):
                dn[k, idx] = out
            if self._mask_layer:  # no group where the grid is beyond the file: mask stays 0
                for _, layer in _resample_groups({"m": windows[self._mask_layer][k]}, grid,
                                                 "nearest"):
                    mask[k] = np.nan_to_num(layer[0], nan=0.0)
        TIMINGS.add("reproject", time.perf_counter() - started)
        refl = to_reflectance(dn, scene.offset, nodata=None)
        clear, cloud = self._masks(mask if self._mask_layer else None, refl.shape)
        return ScenePatches(scene, refl, clear & np.isfinite(refl).all(axis=1), cloud)

    def _masks(self, layer: np.ndarray | None, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        if layer is None:
            return np.ones((shape[0], *shape[2:]), bool), np.zeros((shape[0], *shape[2:]), bool)
        if self.mask == "scl":
            return scl_masks(layer.astype(np.int64))
        if self.mask == "qa60":
            return qa60_masks(layer.astype(np.int64))
        cloud = layer >= self.options.cloud_probability_threshold
        return ~cloud, cloud

    def _read_windows(self, scene: Scene, href: str, grids: Sequence[PatchGrid]) -> list[_Pixels | None]:
        """One asset's native pixels under each grid; the file is opened once for all."""
        def attempt() -> list[_Pixels | None]:
            path = self.gdal_path(href, scene)
            started = time.perf_counter()
            with host_slot(href, self.options.max_connections_per_host), \
                    rasterio.Env(**COG_GDAL_ENV, GDAL_HTTP_TIMEOUT=int(self.options.timeout)), \
                    rasterio.open(path) as src:
                out = _read_under_grids(src, grids)
            TIMINGS.add("read", time.perf_counter() - started)
            return out

        # a local file that fails to read is broken, not busy: no retries
        attempts = self.options.retries if _is_remote(href) else 1
        try:
            return retry_call(attempt, f"read {href}", attempts=attempts,
                              on_retry=lambda e: self.on_read_error(href, e))
        except RasterioError as e:
            raise SourceError(f"cannot read {href} ({type(e).__name__}: {e})") from e

    def gdal_path(self, href: str, scene: Scene) -> str:
        """The path GDAL opens for an asset href (signed where the catalogue needs it)."""
        return _vsi_path(href)

    def on_read_error(self, href: str, error: BaseException) -> None:
        """Hook called before a read is retried (re-signing sources drop their token)."""
        TIMINGS.add("retries", 1)


class _Timings:
    """Seconds spent in this process: ``fetch`` (wall time of a scene's parallel reads),
    ``read`` (requests + decode, summed over threads), ``reproject``; ``retries`` counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, float] = {}

    def add(self, key: str, value: float) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + value

    def take(self) -> dict[str, float]:
        """The totals so far, reset to zero."""
        with self._lock:
            values, self.values = self.values, {}
        return values


TIMINGS = _Timings()


@dataclass(frozen=True)
class _Pixels:
    """Native pixels of one asset under one grid (DN as float32, no data as NaN)."""

    data: np.ndarray
    transform: Affine
    crs: str


def _read_under_grids(src, grids: Sequence[PatchGrid]) -> list[_Pixels | None]:
    """The native pixels of ``src`` under each grid (None where disjoint).

    Windows close to each other are read together (one read of their union, when it is
    not much larger than they are), so patches sharing tiles cost one decode and a few
    range requests; far-apart windows are read on their own.
    """
    if src.crs is None:  # a header cut short by the network parses as a bare TIFF
        raise TransientError(f"{src.name}: no CRS in the file header (incomplete read?)")
    crs = src.crs.to_wkt()  # once per file: CRS conversions are slow
    windows = [_window_under(src, crs, g) for g in grids]
    out: list[_Pixels | None] = [None] * len(grids)
    nodata = src.nodata or 0
    for members in _clusters(windows):
        union = _union([windows[k] for k in members])
        data = src.read(1, window=union).astype(np.float32)
        data[data == nodata] = np.nan  # no data must not blend into neighbours
        for k in members:
            w = windows[k]
            r, c = w.row_off - union.row_off, w.col_off - union.col_off
            out[k] = _Pixels(data[r:r + w.height, c:c + w.width], src.window_transform(w), crs)
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
    return _to(grid.crs, crs).transform_bounds(*grid.bounds, densify_pts=21)


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


class _LockedTransformer:
    """A pyproj transformer shared by threads (pyproj transformers are not thread-safe)."""

    def __init__(self, src: str, dst: str) -> None:
        self._transformer = Transformer.from_crs(src, dst, always_xy=True)
        self._lock = threading.Lock()

    def transform(self, x, y):
        with self._lock:
            return self._transformer.transform(x, y)

    def transform_bounds(self, *bounds, densify_pts: int = 21):
        with self._lock:
            return self._transformer.transform_bounds(*bounds, densify_pts=densify_pts)


_transformers_lock = threading.Lock()


@cache
def _cached_transformer(src: str, dst: str) -> _LockedTransformer:
    return _LockedTransformer(src, dst)


def _to(src: str, dst: str) -> _LockedTransformer:
    """The process-wide transformer from ``src`` to ``dst`` (created once)."""
    with _transformers_lock:
        return _cached_transformer(src, dst)


@cache
def _rio_crs(crs: str) -> CRS:
    return CRS.from_user_input(crs)


def _resample_groups(layers: dict[str, _Pixels | None], grid: PatchGrid, how: str):
    """Yield (band indices, resampled DN) per group of layers sharing one native grid.

    Bands of one resolution share their pixel grid, so one set of sample positions serves
    them all. Nearest and bilinear are computed here from exact pixel-centre positions
    (no per-call GDAL set-up); bilinear leaves no-data neighbours out and renormalises the
    weights of the others, as GDAL's warper does. Cubic goes through GDAL.
    """
    groups: dict[tuple, list[str]] = {}
    for name, px in layers.items():
        if px is not None:
            groups.setdefault((px.transform, px.crs, px.data.shape), []).append(name)
    for (transform, crs, _), names in groups.items():
        data = np.stack([layers[n].data for n in names])
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
    return _to(grid.crs, crs).transform(*(grid.transform @ (cols, rows)))


@lru_cache(maxsize=4096)
def _plan(grid: PatchGrid, crs: str, transform: Affine, shape: tuple[int, int],
          how: str) -> tuple[np.ndarray, np.ndarray]:
    """Source pixels and weights of every grid pixel: ``(k, H*W)`` flat indices and weights.

    ``k`` is 4 for bilinear (the four nearest pixel centres) and 1 for nearest; samples
    outside the source get weight 0. Scenes of one tile share their pixel grid, so a plan
    serves every scene of a job.
    """
    col, row = ~transform @ _positions(grid, crs)
    h, w = shape
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
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
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
    reproject(data, out, src_transform=transform, src_crs=_rio_crs(crs), src_nodata=np.nan,
              dst_transform=grid.transform, dst_crs=_rio_crs(grid.crs), dst_nodata=np.nan,
              resampling=Resampling[how])
    return out


def _is_remote(href: str) -> bool:
    return href.startswith(("http://", "https://", "s3://"))


def _vsi_path(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://"):
        return f"/vsis3/{href[5:]}"
    return href.removeprefix("file://")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class SasSigner:
    """Planetary Computer SAS tokens per collection, renewed before they expire."""

    def __init__(self, token_url: str, timeout: float, retries: int, margin_s: float = 300) -> None:
        self.token_url = token_url.rstrip("/")
        self.timeout, self.retries, self.margin = timeout, retries, timedelta(seconds=margin_s)
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def sign(self, href: str, collection: str) -> str:
        """``href`` with a valid token appended (fetched or renewed when needed)."""
        if not href.startswith("http"):
            return href
        return f"{href}{'&' if '?' in href else '?'}{self.token(collection)}"

    def token(self, collection: str) -> str:
        with self._lock:
            cached = self._tokens.get(collection)
            if cached and cached[1] - self.margin > datetime.now(UTC):
                return cached[0]
            token, expiry = retry_call(lambda: self._fetch(collection), "SAS token",
                                       attempts=self.retries)
            self._tokens[collection] = (token, expiry)
            return token

    def forget(self) -> None:
        """Drop every token (after a 403: the signature expired or was revoked)."""
        with self._lock:
            self._tokens.clear()

    def _fetch(self, collection: str) -> tuple[str, datetime]:
        import requests

        r = requests.get(f"{self.token_url}/{collection}", timeout=self.timeout)
        r.raise_for_status()
        body = r.json()
        return body["token"], _parse_time(body["msft:expiry"])


@register_source
class StacSource(ItemReader):
    """Scenes from a STAC API (pystac-client), pixels from its COG assets."""

    kind = "stac"
    Options = StacOptions

    def __init__(self, level: Level = "L2A", options: StacOptions | None = None,
                 resampling: str = "bilinear") -> None:
        super().__init__(level, options, resampling)
        preset = self._preset()
        self.url = self.options.url or preset["url"]
        self.collection = self.options.collection or preset.get("collections", {}).get(level)
        if self.collection is None:
            raise ConfigError(f"source.options.collection: catalogue {self.options.catalogue!r} "
                              f"has no {level} collection; give one")
        signing = self.options.signing or preset.get("signing", "none")
        self.signer = (SasSigner(self.options.sas_url, self.options.timeout, self.options.retries)
                       if signing == "planetary-computer" else None)
        self._client = None

    def __getstate__(self) -> dict:  # the pystac-client session does not travel to workers
        return {**self.__dict__, "_client": None}

    def client(self):
        """The pystac-client Client (opened on first use, with urllib3 retries)."""
        if self._client is None:
            from pystac_client import Client
            from pystac_client.stac_api_io import StacApiIO
            from urllib3.util.retry import Retry

            retry = Retry(total=self.options.retries, backoff_factor=0.25, backoff_jitter=0.5,
                          status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None,
                          raise_on_status=False)
            io = StacApiIO(timeout=self.options.timeout, max_retries=retry)
            self._client = retry_call(lambda: Client.open(self.url, stac_io=io),
                                      f"open {self.url}", attempts=self.options.retries)
        return self._client

    def search(self, bbox, start, end, max_cloud):
        items = retry_call(lambda: self._search_items(bbox, start, end, max_cloud),
                           f"search {self.url}", attempts=self.options.retries)
        scenes = [s for item in items if (s := self.scene_of(item)) is not None]
        kept = [s for s in scenes if self.keep(s, start, end, max_cloud)]
        return sorted(kept, key=lambda s: (s.datetime, s.id))

    def _search_items(self, bbox, start, end, max_cloud) -> list[dict]:
        from pystac_client import ConformanceClasses

        client = self.client()
        last = end - timedelta(seconds=1)
        kwargs: dict[str, Any] = {
            "collections": [self.collection], "bbox": list(bbox), "limit": self.options.page_size,
            "datetime": f"{start:%Y-%m-%dT%H:%M:%SZ}/{last:%Y-%m-%dT%H:%M:%SZ}"}
        if client.conforms_to(ConformanceClasses.QUERY):  # else filtered here, after search
            kwargs["query"] = {self.options.cloud_property: {"lt": max_cloud}}
        with host_slot(self.url, self.options.max_connections_per_host):
            return list(client.search(**kwargs).items_as_dicts())

    def gdal_path(self, href: str, scene: Scene) -> str:
        if self.signer is not None:
            href = self.signer.sign(href, scene.properties.get("collection") or self.collection)
        return _vsi_path(href)

    def on_read_error(self, href: str, error: BaseException) -> None:
        super().on_read_error(href, error)
        if self.signer is not None and "403" in str(error):
            self.signer.forget()
