"""Sentinel-2 monthly composites computed by Google Earth Engine (``pip install 'cropland[gee]'``).

Earth Engine does the masking and the monthly median server side, so this source's
"scene" is one composite: :meth:`EarthEngineSource.search` lists the images of
``COPERNICUS/S2_SR_HARMONIZED`` (L2A) or ``COPERNICUS/S2_HARMONIZED`` (L1C) over the area
and month under the scene cloud filter (``CLOUDY_PIXEL_PERCENTAGE``) and returns one
:class:`Scene` standing for their median, whose id lists them; :meth:`~EarthEngineSource.read`
fetches that median on each patch grid with ``ee.data.computePixels`` (``NUMPY_NDARRAY``,
the grid's CRS, affine transform and dimensions), several grids at once but no more than
``max_concurrent_requests`` (Earth Engine's per-project concurrency quota is 40 on the
high-volume endpoint; keep workers x this below it).

Masks, the same as the other sources: L2A drops SCL classes 0, 1, 3, 8, 9, 10; L1C drops
QA60 bit 10 *or* bit 11 (the original script's Python ``and`` kept only cirrus), or with
``cloud_probability: true`` pixels of ``COPERNICUS/S2_CLOUD_PROBABILITY`` at or above the
threshold (QA60 is empty for baseline 04.00 scenes). The HARMONIZED collections already
shift baseline 04.00 DN back by the offset, so :attr:`Scene.offset` is 0 here.

This adapter cannot run offline: its tests check every request against the documented
API with a fake ``ee`` module that records them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import Field

from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.errors import ConfigError
from cropland.sources.base import Scene, ScenePatches, Source, SourceOptions, register_source
from cropland.sources.http import TransientError, host_slot, retry_call
from cropland.sources.masks import QA60_BITS, SCL_CLOUD, SCL_NOT_CLEAR, to_reflectance

log = logging.getLogger(__name__)

COLLECTIONS = {"L2A": "COPERNICUS/S2_SR_HARMONIZED", "L1C": "COPERNICUS/S2_HARMONIZED"}
CLOUD_PROBABILITY = "COPERNICUS/S2_CLOUD_PROBABILITY"
HIGH_VOLUME_URL = "https://earthengine-highvolume.googleapis.com"
CLOUD_BAND = "cloud_pct"  # share of the month's images flagging the pixel cloudy, 0-100
_TRANSIENT = re.compile(r"429|quota|too many|rate limit|deadline|unavailable|internal error|"
                        r"timed? ?out|connection", re.IGNORECASE)
_init_lock = threading.Lock()
_initialised = False


class EarthEngineOptions(SourceOptions):
    """Options of the Earth Engine source."""

    project: str | None = Field(None, description="Google Cloud project with Earth Engine enabled.")
    high_volume: bool = Field(True, description="Use the high-volume endpoint (for computePixels).")
    max_concurrent_requests: int = Field(
        8, gt=0, le=40, description="computePixels calls in flight per worker process.")
    cloud_probability: bool = Field(
        False, description="L1C: mask with S2_CLOUD_PROBABILITY instead of QA60.")
    cloud_probability_threshold: float = Field(40.0, ge=0, le=100)
    retries: int = Field(6, gt=0, description="Attempts per request before the job fails.")


def load_ee():
    """The ``ee`` module (imported on first use: the extra is optional)."""
    try:
        import ee
    except ImportError:
        raise ConfigError("source.kind: earthengine needs earthengine-api: "
                          "pip install 'cropland[gee]'") from None
    return ee


@register_source
class EarthEngineSource(Source):
    """Server-side monthly median composites from Earth Engine (see module docstring)."""

    kind = "earthengine"
    Options = EarthEngineOptions
    options: EarthEngineOptions

    def ee(self):
        """The initialised ``ee`` module."""
        global _initialised
        ee = load_ee()
        with _init_lock:
            if not _initialised:
                kwargs: dict[str, Any] = {"project": self.options.project}
                if self.options.high_volume:
                    kwargs["opt_url"] = HIGH_VOLUME_URL
                ee.Initialize(**kwargs)
                _initialised = True
        return ee

    # -- scenes --------------------------------------------------------------------------
    def collection(self, bbox, start: datetime, end: datetime, max_cloud: float):
        """The month's images over ``bbox`` under the scene cloud filter, unmasked."""
        ee = self.ee()
        region = ee.Geometry.Rectangle(list(bbox), "EPSG:4326", False)
        return (ee.ImageCollection(COLLECTIONS[self.level])
                .filterBounds(region)
                .filterDate(start.isoformat(), end.isoformat())
                .filter(ee.Filter.lt("CLOUDY_PIXEL_PERCENTAGE", max_cloud)))

    def search(self, bbox, start, end, max_cloud):
        images = self.collection(bbox, start, end, max_cloud)
        ids = self._call(lambda: images.aggregate_array("system:index").getInfo(), "list images")
        if not ids:
            return []
        return [Scene(
            id=",".join(sorted(ids)), datetime=start, cloud_cover=0.0, level=self.level,
            bbox=tuple(bbox), offset=0.0,
            properties={"composite": "median", "collection": COLLECTIONS[self.level],
                        "start": start.isoformat(), "end": end.isoformat(),
                        "max_cloud": max_cloud, "images": len(ids)},
        )]

    # -- pixels --------------------------------------------------------------------------
    def composite(self, scene: Scene):
        """The masked monthly median (DN, 0 where no clear image) plus :data:`CLOUD_BAND`."""
        p = scene.properties
        images = self.collection(scene.bbox, datetime.fromisoformat(p["start"]),
                                 datetime.fromisoformat(p["end"]), p["max_cloud"])
        if self.level == "L1C" and self.options.cloud_probability:
            images = self._join_cloud_probability(images)
        clear = images.map(lambda img: self._resampled(img.select(list(BAND_NAMES)))
                           .updateMask(self._clear(img)))
        cloudy = images.map(lambda img: self._cloudy(img).multiply(100))
        return (clear.median().unmask(0)
                .addBands(cloudy.mean().rename(CLOUD_BAND))
                .toFloat())

    def _resampled(self, img):
        if self.resampling == "nearest":  # Earth Engine's default
            return img
        return img.resample({"bilinear": "bilinear", "cubic": "bicubic"}[self.resampling])

    def _clear(self, img):
        if self.level == "L2A":
            n = len(SCL_NOT_CLEAR)
            return img.select("SCL").remap(list(SCL_NOT_CLEAR), [0] * n, 1)
        if self.options.cloud_probability:
            return self._probability(img).lt(self.options.cloud_probability_threshold)
        return self._cloudy(img).Not()

    def _cloudy(self, img):
        if self.level == "L2A":
            n = len(SCL_CLOUD)
            return img.select("SCL").remap(list(SCL_CLOUD), [1] * n, 0)
        if self.options.cloud_probability:
            return self._probability(img).gte(self.options.cloud_probability_threshold)
        qa = img.select("QA60")
        flags = [qa.bitwiseAnd(1 << bit).neq(0) for bit in QA60_BITS]
        cloudy = flags[0]
        for flag in flags[1:]:
            cloudy = cloudy.Or(flag)  # either bit: opaque cloud or cirrus
        return cloudy

    def _probability(self, img):
        return self.ee().Image(img.get("cloud_probability")).select("probability")

    def _join_cloud_probability(self, images):
        ee = self.ee()
        probabilities = ee.ImageCollection(CLOUD_PROBABILITY)
        same = ee.Filter.equals(leftField="system:index", rightField="system:index")
        return ee.ImageCollection(ee.Join.saveFirst("cloud_probability").apply(
            images, probabilities, same))

    def read(self, scene: Scene, grids: Sequence[PatchGrid]) -> ScenePatches:
        image = self.composite(scene)
        workers = min(self.options.max_concurrent_requests, max(1, len(grids)))
        with ThreadPoolExecutor(workers) as pool:
            arrays = list(pool.map(lambda g: self._pixels(image, g), grids))
        dn = np.stack([np.stack([a[b] for b in BAND_NAMES]) for a in arrays]).astype(np.float32)
        refl = to_reflectance(dn, scene.offset, nodata=0)
        cloud = np.stack([np.asarray(a[CLOUD_BAND], np.float32) > 50 for a in arrays])
        return ScenePatches(scene, refl, np.isfinite(refl).all(axis=1), cloud)

    def pixel_request(self, image, grid: PatchGrid) -> dict[str, Any]:
        """The ``computePixels`` request for one patch grid."""
        left, _, _, top = grid.bounds
        return {
            "expression": image,
            "fileFormat": "NUMPY_NDARRAY",
            "bandIds": [*BAND_NAMES, CLOUD_BAND],
            "grid": {
                "dimensions": {"width": grid.size, "height": grid.size},
                "affineTransform": {"scaleX": grid.resolution, "shearX": 0, "translateX": left,
                                    "shearY": 0, "scaleY": -grid.resolution, "translateY": top},
                "crsCode": grid.crs,
            },
        }

    def _pixels(self, image, grid: PatchGrid) -> np.ndarray:
        request = self.pixel_request(image, grid)
        with host_slot(HIGH_VOLUME_URL, self.options.max_concurrent_requests):
            return self._call(lambda: self.ee().data.computePixels(request), "computePixels")

    def _call(self, fn, what: str):
        """Call Earth Engine, retrying quota, rate and server errors with backoff."""
        def attempt():
            try:
                return fn()
            except Exception as e:  # EEException, HttpError...: classified by message
                if _TRANSIENT.search(str(e)):
                    raise TransientError(f"{what}: {e}") from e
                raise

        return retry_call(attempt, f"Earth Engine {what}", attempts=self.options.retries)
