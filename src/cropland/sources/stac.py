"""Sentinel-2 from any STAC API (Earth Search, Planetary Computer, your own), read as COGs.

Search goes through pystac-client; pixels are read by :class:`~cropland.sources.items.ItemReader`
with rasterio over HTTP range requests (``/vsicurl``, :data:`~cropland.sources.http.COG_GDAL_ENV`),
so only the tiles under the patches travel. Catalogue presets (:data:`CATALOGUES`) give the API
URL, the collection per level, the asset key of each band and the URL signing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from cropland.core.bands import BAND_NAMES, BY_NAME
from cropland.errors import ConfigError
from cropland.sources.base import Level, Scene, register_source
from cropland.sources.http import host_slot, retry_call
from cropland.sources.items import ItemOptions, ItemReader, vsi_path
from cropland.sources.signing import SasSigner

EARTH_SEARCH_BANDS: dict[str, str] = {
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge1",
    "B6": "rededge2", "B7": "rededge3", "B8": "nir", "B8A": "nir08", "B9": "nir09",
    "B11": "swir16", "B12": "swir22", "SCL": "scl",
}
PLANETARY_COMPUTER_BANDS: dict[str, str] = {
    **{b: f"B{b[1:]:0>2}" for b in BAND_NAMES}, "SCL": "SCL",
}
#: Copernicus Data Space L2A assets: each band at its native resolution (``B02_10m``).
COPERNICUS_BANDS: dict[str, str] = {
    **{b: f"B{b[1:]:0>2}_{BY_NAME[b].resolution}m" for b in BAND_NAMES}, "SCL": "SCL_20m",
}

#: Ready catalogue settings: API URL, collection per level, asset keys, URL signing.
CATALOGUES: dict[str, dict[str, Any]] = {
    "earth-search": {
        "url": "https://earth-search.aws.element84.com/v1",
        "collections": {"L2A": "sentinel-2-l2a", "L1C": "sentinel-2-l1c"},
        "bands": EARTH_SEARCH_BANDS, "signing": "none",
        # L1C: JPEG 2000 in the requester-pays bucket sentinel-s2-l1c (eu-central-1)
        "s3": {"requester_pays": True, "region": "eu-central-1"},
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
    # STAC 1.1 items, JPEG 2000 in the bucket eodata of its own S3 endpoint (S3 keys from
    # the Copernicus Data Space dashboard)
    "copernicus-dataspace": {
        "url": "https://stac.dataspace.copernicus.eu/v1",
        "collections": {"L2A": "sentinel-2-l2a", "L1C": "sentinel-2-l1c"},
        "bands": COPERNICUS_BANDS, "signing": "none",
        "s3": {"endpoint": "https://eodata.dataspace.copernicus.eu"},
    },
}


class StacOptions(ItemOptions):
    """Options of the STAC source. A ``catalogue`` preset fills what is left out."""

    catalogue: Literal["earth-search", "earth-search-c1", "planetary-computer",
                       "copernicus-dataspace"] | None = Field(
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
                             "planetary-computer, copernicus-dataspace) or a url")
        return self


@register_source
class StacSource(ItemReader):
    """Scenes from a STAC API (pystac-client), pixels from its COG assets."""

    kind = "stac"
    Options = StacOptions
    options: StacOptions

    def __init__(self, level: Level = "L2A", options: StacOptions | None = None,
                 resampling: str = "bilinear") -> None:
        super().__init__(level, options, resampling)
        preset = self.preset()
        self.url = self.options.url or preset["url"]
        self.collection = self.options.collection or preset.get("collections", {}).get(level)
        if self.collection is None:
            raise ConfigError(f"source.options.collection: catalogue {self.options.catalogue!r} "
                              f"has no {level} collection; give one")
        signing = self.options.signing or preset.get("signing", "none")
        self.signer = (SasSigner(self.options.sas_url, self.options.timeout, self.options.retries)
                       if signing == "planetary-computer" else None)
        self._client = None

    def preset(self) -> dict[str, Any]:
        return CATALOGUES.get(self.options.catalogue or "", {})

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

    def scenes_over(self, bbox, start, end, max_cloud):
        items = retry_call(lambda: self._search_items(bbox, start, end, max_cloud),
                           f"search {self.url}", attempts=self.options.retries)
        return [s for item in items if (s := self.scene_of(item)) is not None]

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
        return vsi_path(href)

    def on_read_error(self, href: str, error: BaseException) -> None:
        super().on_read_error(href, error)
        if self.signer is not None and "403" in str(error):
            self.signer.forget()
