"""STAC-shaped items to scenes, and scene reads: what every item-based source shares.

The STAC API source and the local source (a static catalogue or scene folders) both turn
items into :class:`~cropland.sources.base.Scene` objects and read them here, with the same
band keys, masks and baseline offset rule.

**Baseline offset rule** (:func:`dn_offset`): the DN offset of a scene is

1. ``0`` when the item says ``earthsearch:boa_offset_applied: true`` (the pixels were
   already shifted to the pre-04.00 scale);
2. ``0`` when its processing baseline (``s2:processing_baseline``, or STAC 1.1's
   ``processing:version``) is before ``04.00``: no such product carries the offset, whatever
   ``raster:bands`` says (Earth Search sets -0.1 where it does not apply);
3. else ``offset / scale`` of the band asset's ``raster:bands`` (or, STAC 1.1, its
   ``raster:offset`` / ``raster:scale``) when that offset is not 0 (``sentinel-2-c1-l2a``,
   Copernicus Data Space: ``-0.1 / 0.0001 = -1000``);
4. else ``-1000`` when the baseline is ``04.00`` or later (Planetary Computer);
5. else ``0``.

The offset rides on :attr:`Scene.offset`; each read checks it against the pixels
(:mod:`cropland.sources.offset`: the pixels win where they clearly contradict the metadata,
which is logged and recorded in :attr:`ScenePatches.offset`) and applies it once, in
:func:`~cropland.sources.masks.to_reflectance`.

**Masks**: Level-2A uses the SCL asset; Level-1C the QA60 asset, else the MSK_CLASSI_B00
asset of baseline 04.00+ products (its bands 1, opaque clouds, and 2, cirrus, are QA60's
bits 10 and 11), or, with ``mask: cloud-probability``, a cloud-probability asset (clear
below the threshold). ``mask: none`` keeps every pixel with data (for catalogues without a
mask layer). A scene without its mask layer is never read: its samples end ``empty`` with
the reason "no mask" (see :meth:`ItemReader.census`).
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import rasterio
from pydantic import Field
from rasterio.errors import RasterioError

from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.errors import CredentialsError, SourceError
from cropland.sources.base import CENSUS_CLOUD, Level, Scene, ScenePatches, Source, SourceOptions
from cropland.sources.http import COG_GDAL_ENV, host_slot, retry_call
from cropland.sources.masks import classi_to_qa60, qa60_masks, scl_masks, to_reflectance
from cropland.sources.offset import OffsetCheck, offset_from_pixels
from cropland.sources.resample import Pixels, read_under_grids, resample_groups
from cropland.sources.s3 import S3Settings, is_s3, refused, require_credentials
from cropland.sources.timings import TIMINGS

log = logging.getLogger(__name__)

BASELINE_OFFSET = -1000.0
#: Options that change how pixels travel, not which pixels: left out of the provenance.
TRANSPORT_OPTIONS = frozenset({"max_connections_per_host", "read_threads", "retries", "timeout",
                               "page_size", "sas_url", "requester_pays", "s3_endpoint"})
#: The layers that can serve each mask kind, the first an item has is used.
MASK_LAYERS: dict[str, tuple[str, ...]] = {
    "scl": ("SCL",), "qa60": ("QA60", "MSK_CLASSI"), "cloud-probability": ("CLOUD_PROB",),
    "none": (),
}


class ItemOptions(SourceOptions):
    """Options of every source that reads STAC-shaped items (STAC API, local catalogue)."""

    bands: dict[str, str] = Field(
        default_factory=dict,
        description="Asset key of each band (B1..B12, SCL, QA60, MSK_CLASSI, CLOUD_PROB); "
        "merged over the preset.")
    mask: Literal["auto", "scl", "qa60", "cloud-probability", "none"] = Field(
        "auto", description="Cloud mask layer; auto: SCL for L2A, QA60 (else MSK_CLASSI) for L1C.")
    cloud_probability_threshold: float = Field(
        40.0, ge=0, le=100, description="With mask: cloud-probability, cloudy at or above this %.")
    cloud_property: str = Field("eo:cloud_cover", description="Item property of the scene cloud %.")
    max_connections_per_host: int = Field(8, gt=0, description="Concurrent requests per host.")
    read_threads: int = Field(8, gt=0, description="Band files read in parallel per scene.")
    requester_pays: bool | None = Field(
        None, description="Agree to pay for reads of s3:// requester-pays buckets "
        "(AWS_REQUEST_PAYER=requester); default: the catalogue preset's.")
    s3_endpoint: str | None = Field(
        None, description="S3-compatible endpoint URL of s3:// hrefs (https://host[:port]); "
        "default: the catalogue preset's, else AWS.")
    retries: int = Field(6, gt=0, description="Attempts per request before the job fails.")
    timeout: float = Field(60.0, gt=0, description="Seconds before a request times out.")


def dn_offset(item: dict, asset_key: str) -> float:
    """The DN offset of an item's pixels (see the module docstring for the rule)."""
    props = item.get("properties", {})
    if props.get("earthsearch:boa_offset_applied") is True:
        return 0.0
    baseline = processing_baseline(props)
    if baseline is not None and baseline < 4.0:
        return 0.0
    asset = item.get("assets", {}).get(asset_key, {})
    band = (asset.get("raster:bands") or [{}])[0]
    offset = band.get("offset", asset.get("raster:offset"))
    if offset:
        return float(round(offset / band.get("scale", asset.get("raster:scale", 1e-4))))
    if baseline is not None and baseline >= 4.0:
        return BASELINE_OFFSET
    return 0.0


def processing_baseline(props: dict) -> float | None:
    """An item's processing baseline (``05.09`` -> 5.09), None when it does not say."""
    value = props.get("s2:processing_baseline") or props.get("processing:version")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ItemReader(Source):
    """What every STAC-shaped source shares: items to scenes, and scene reads."""

    options: ItemOptions

    def __init__(self, level: Level = "L2A", options: SourceOptions | None = None,
                 resampling: str = "bilinear") -> None:
        super().__init__(level, options, resampling)
        self.bands = self._band_keys()
        self.mask = self._mask_kind()
        s3 = self.preset().get("s3", {})
        self.s3 = S3Settings(
            endpoint=self.options.s3_endpoint or s3.get("endpoint"), region=s3.get("region"),
            requester_pays=(s3.get("requester_pays", False) if self.options.requester_pays is None
                            else self.options.requester_pays))

    def describe(self) -> dict[str, Any]:
        """Provenance without the transport settings (they do not change the pixels)."""
        return {k: v for k, v in super().describe().items() if k not in TRANSPORT_OPTIONS}

    def preset(self) -> dict[str, Any]:
        """Ready settings of a known catalogue (none here; :class:`StacSource` has presets)."""
        return {}

    def _band_keys(self) -> dict[str, str]:
        return {b: b for b in BAND_NAMES} | self.preset().get("bands", {}) | self.options.bands

    def _mask_kind(self) -> str:
        mask = self.options.mask
        if mask == "auto":
            mask = "scl" if self.level == "L2A" else "qa60"
        return mask

    def _mask_layer(self, assets: dict) -> str | None:
        """The layer of an item's assets that holds its cloud mask (None: it has none)."""
        return next((m for m in MASK_LAYERS[self.mask] if self.bands.get(m, m) in assets), None)

    # -- items -> scenes -----------------------------------------------------------------
    @abstractmethod
    def scenes_over(self, bbox, start: datetime, end: datetime, max_cloud: float) -> list[Scene]:
        """The scenes of the items found over ``bbox`` from ``start`` to ``end`` (a catalogue
        may leave out those at or above ``max_cloud`` already); filtered by :meth:`search`."""

    def search(self, bbox, start, end, max_cloud):
        kept = [s for s in self.scenes_over(bbox, start, end, max_cloud)
                if self.keep(s, start, end, max_cloud) and self.masked(s)]
        return sorted(kept, key=lambda s: (s.datetime, s.id))

    def census(self, bbox, start, end):
        return [s for s in self.scenes_over(bbox, start, end, CENSUS_CLOUD)
                if self.keep(s, start, end, CENSUS_CLOUD)]

    def scene_of(self, item: dict) -> Scene | None:
        """The scene of a STAC item, or None when it lacks a band (see :meth:`masked`)."""
        assets = item.get("assets", {})
        missing = [b for b in BAND_NAMES if self.bands.get(b, b) not in assets]
        if missing:
            log.warning("item %s lacks %s (asset keys %s); skipped", item["id"],
                        missing, [self.bands.get(b, b) for b in missing])
            return None
        mask = self._mask_layer(assets)
        props = item["properties"]
        hrefs = {b: assets[self.bands.get(b, b)]["href"]
                 for b in [*BAND_NAMES, *([mask] if mask else [])]}
        return Scene(
            id=item["id"], datetime=parse_time(props["datetime"]).replace(tzinfo=None),
            cloud_cover=float(props.get(self.options.cloud_property, 0.0)), level=self.level,
            bbox=tuple(item["bbox"]), offset=dn_offset(item, self.bands["B4"]),
            properties={"assets": hrefs, "mask": mask, "collection": item.get("collection"),
                        "processing_baseline": processing_baseline(props)},
        )

    def keep(self, scene: Scene, start: datetime, end: datetime, max_cloud: float) -> bool:
        """The scene filter: acquired in [start, end) with cloud cover below ``max_cloud``."""
        return start <= scene.datetime < end and scene.cloud_cover < max_cloud

    def masked(self, scene: Scene) -> bool:
        """Whether the scene has the mask layer it needs (any scene, with ``mask: none``)."""
        if self.mask == "none" or scene.properties.get("mask"):
            return True
        log.debug("scene %s has no %s layer: not read", scene.id,
                  " or ".join(MASK_LAYERS[self.mask]))
        return False

    # -- pixels --------------------------------------------------------------------------
    def read(self, scene: Scene, grids: Sequence[PatchGrid]) -> ScenePatches:
        hrefs: dict[str, str] = scene.properties["assets"]
        layer = scene.properties.get("mask")
        names = list(BAND_NAMES) + ([layer] if layer else [])
        started = time.perf_counter()
        with ThreadPoolExecutor(min(self.options.read_threads, len(names))) as pool:  # I/O bound
            windows = dict(zip(names, pool.map(
                lambda name: self._read_windows(scene, hrefs[name], grids, name), names),
                strict=True))
        n, size = len(grids), grids[0].size if grids else 0
        dn = np.full((n, 12, size, size), np.nan, np.float32)
        mask = np.zeros((n, size, size), np.float32)
        TIMINGS.add("fetch", time.perf_counter() - started)
        started = time.perf_counter()
        for k, grid in enumerate(grids):
            bands = {b: windows[b][k] for b in BAND_NAMES}
            for idx, out in resample_groups(bands, grid, self.resampling):
                dn[k, idx] = out
            if layer:  # no group where the grid is beyond the file: mask stays 0
                for _, resampled in resample_groups({"m": windows[layer][k]}, grid, "nearest"):
                    mask[k] = np.nan_to_num(resampled[0], nan=0.0)
        TIMINGS.add("reproject", time.perf_counter() - started)
        clear, cloud = self._masks(mask if layer else None, dn.shape)
        clear &= np.isfinite(dn).all(axis=1)
        check = self.check_offset(scene, dn, clear)
        return ScenePatches(scene, to_reflectance(dn, check.used, nodata=None), clear, cloud,
                            check)

    def check_offset(self, scene: Scene, dn: np.ndarray, clear: np.ndarray) -> OffsetCheck:
        """The scene's offset from its metadata, checked against its pixels (the pixels win
        where they clearly contradict it; see :mod:`cropland.sources.offset`)."""
        baseline = scene.properties.get("processing_baseline")
        may_carry = baseline is None or float(baseline) >= 4.0
        check = OffsetCheck(scene.offset, offset_from_pixels(dn, clear, may_carry))
        if check.overruled:
            log.warning("scene %s: the metadata gives a DN offset of %g but the pixels show %g "
                        "(see cropland.sources.offset); using %g", scene.id, check.metadata,
                        check.pixels, check.used)
        return check

    def _masks(self, layer: np.ndarray | None, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        if layer is None:
            return np.ones((shape[0], *shape[2:]), bool), np.zeros((shape[0], *shape[2:]), bool)
        if self.mask == "scl":
            return scl_masks(layer.astype(np.int64))
        if self.mask == "qa60":
            return qa60_masks(layer.astype(np.int64))
        cloud = layer >= self.options.cloud_probability_threshold
        return ~cloud, cloud

    def _read_windows(self, scene: Scene, href: str, grids: Sequence[PatchGrid],
                      layer: str) -> list[Pixels | None]:
        """One asset's native pixels under each grid; the file is opened once for all."""
        merge = classi_to_qa60 if layer == "MSK_CLASSI" else None
        s3 = is_s3(href)
        if s3:  # before any request: no credentials is one line, not a retried failure
            require_credentials(href, self.s3.requester_pays)
        env = {**COG_GDAL_ENV, **(self.s3.gdal_env() if s3 else {})}

        def attempt() -> list[Pixels | None]:
            path = self.gdal_path(href, scene)
            started = time.perf_counter()
            with host_slot(href, self.options.max_connections_per_host), \
                    rasterio.Env(**env, GDAL_HTTP_TIMEOUT=int(self.options.timeout)), \
                    rasterio.open(path) as src:
                out = read_under_grids(src, grids, merge)
            TIMINGS.add("read", time.perf_counter() - started)
            return out

        # a local file that fails to read is broken, not busy: no retries
        attempts = self.options.retries if is_remote(href) else 1
        try:
            return retry_call(attempt, f"read {href}", attempts=attempts,
                              on_retry=lambda e: self.on_read_error(href, e))
        except RasterioError as e:
            if s3 and refused(e):
                pays = "" if self.s3.requester_pays else (
                    ", or set source.options.requester_pays: true for a requester-pays bucket")
                raise CredentialsError(f"S3 refused {href} ({e}): check the AWS credentials "
                                       f"(AWS_ACCESS_KEY_ID, AWS_PROFILE){pays}") from None
            raise SourceError(f"cannot read {href} ({type(e).__name__}: {e})") from e

    def gdal_path(self, href: str, scene: Scene) -> str:
        """The path GDAL opens for an asset href (signed where the catalogue needs it)."""
        return vsi_path(href)

    def on_read_error(self, href: str, error: BaseException) -> None:
        """Hook called before a read is retried (re-signing sources drop their token)."""
        TIMINGS.add("retries", 1)


def is_remote(href: str) -> bool:
    """Whether ``href`` is read over the network (HTTP or S3)."""
    return href.startswith(("http://", "https://", "s3://"))


def vsi_path(href: str) -> str:
    """The path GDAL opens for ``href``: ``/vsicurl/``, ``/vsis3/`` or a local path."""
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://"):
        return f"/vsis3/{href[5:]}"
    return href.removeprefix("file://")


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)
