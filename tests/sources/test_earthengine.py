"""The Earth Engine adapter at its boundary: a fake ``ee`` module records every request.

Earth Engine cannot be reached from the tests. The fake turns each call chain into its
expression text (``ImageCollection('...').filterBounds(...)``), so the tests read back
the collection id, filters, masking expression and ``computePixels`` grids the adapter
would send, and compare them with the documented API.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from datetime import datetime

import numpy as np
import pytest

from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.sources import earthengine
from cropland.sources.earthengine import CLOUD_BAND, EarthEngineOptions, EarthEngineSource


class Expr:
    """An Earth Engine object: any method call makes a longer expression."""

    def __init__(self, text: str, fake: FakeEE) -> None:
        self.text, self._fake = text, fake

    def __repr__(self) -> str:
        return self.text

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            if name == "getInfo":
                return self._fake.info(self.text)
            return Expr(f"{self.text}.{name}({_args(args, kwargs, self._fake)})", self._fake)
        return call


def _args(args, kwargs, fake) -> str:
    def show(v):
        if callable(v) and not isinstance(v, Expr):  # map(lambda img: ...): record its body
            return f"lambda img: {v(Expr('img', fake))!r}"
        return repr(v)
    return ", ".join([show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()])


class FakeEE(types.ModuleType):
    """A stand-in for the ``ee`` package with canned answers."""

    def __init__(self, image_ids: list[str], dn: float = 1234.0, transient_failures: int = 1) -> None:
        super().__init__("ee")
        self.image_ids, self.dn = image_ids, dn
        self.init_calls: list[dict] = []
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.failures_left = transient_failures
        self._lock = threading.Lock()
        for name in ("ImageCollection", "Image"):
            setattr(self, name, self._factory(name))
        for name in ("Geometry", "Filter", "Join"):
            setattr(self, name, Expr(name, self))
        self.data = types.SimpleNamespace(computePixels=self.compute_pixels)

    def _factory(self, name):
        return lambda *a, **k: Expr(f"{name}({_args(a, k, self)})", self)

    def Initialize(self, **kwargs):
        self.init_calls.append(kwargs)

    def info(self, text: str):
        assert text.endswith("aggregate_array('system:index')"), text
        return list(self.image_ids)

    def compute_pixels(self, request: dict) -> np.ndarray:
        with self._lock:
            self.requests.append(request)
            if self.failures_left:
                self.failures_left -= 1
                raise RuntimeError("Too many concurrent aggregations.")  # EE's quota message
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(0.02)
        dims = request["grid"]["dimensions"]
        out = np.zeros((dims["height"], dims["width"]), [(b, "<f4") for b in request["bandIds"]])
        for k, band in enumerate(BAND_NAMES):
            out[band] = self.dn + k
        out[BAND_NAMES[0]][:4, :4] = 0  # masked: no clear image there
        out[CLOUD_BAND][:, :8] = 75.0
        with self._lock:
            self.in_flight -= 1
        return out


@pytest.fixture
def fake_ee(monkeypatch):
    fake = FakeEE(["20190605T170901_20190605T171427_T14UNA", "20190612T171909_20190612T172000_T14UNA"])
    monkeypatch.setitem(sys.modules, "ee", fake)
    monkeypatch.setattr(earthengine, "_initialised", False)
    return fake


JUNE = (datetime(2019, 6, 1), datetime(2019, 7, 1))
BBOX = (-98.2, 49.5, -97.5, 49.9)


def test_search_sends_collection_filters_and_region(fake_ee):
    source = EarthEngineSource("L2A", EarthEngineOptions(project="my-project"))
    [scene] = source.search(BBOX, *JUNE, max_cloud=5)
    assert fake_ee.init_calls == [{"project": "my-project",
                                   "opt_url": "https://earthengine-highvolume.googleapis.com"}]
    assert scene.id == ",".join(sorted(fake_ee.image_ids))
    assert scene.offset == 0  # HARMONIZED collections carry no offset
    expr = repr(source.collection(BBOX, *JUNE, 5))
    assert expr == (
        "ImageCollection('COPERNICUS/S2_SR_HARMONIZED')"
        ".filterBounds(Geometry.Rectangle([-98.2, 49.5, -97.5, 49.9], 'EPSG:4326', False))"
        ".filterDate('2019-06-01T00:00:00', '2019-07-01T00:00:00')"
        ".filter(Filter.lt('CLOUDY_PIXEL_PERCENTAGE', 5))")


def test_no_image_no_scene(fake_ee):
    fake_ee.image_ids = []
    assert EarthEngineSource("L2A").search(BBOX, *JUNE, max_cloud=5) == []


def test_l2a_masks_scl_and_takes_the_median(fake_ee):
    source = EarthEngineSource("L2A")
    [scene] = source.search(BBOX, *JUNE, max_cloud=5)
    expr = repr(source.composite(scene))
    assert ".map(lambda img: img.select(['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', " \
           "'B9', 'B11', 'B12']).resample('bilinear').updateMask(img.select('SCL')" \
           ".remap([0, 1, 3, 8, 9, 10], [0, 0, 0, 0, 0, 0], 1)))" in expr
    assert ".median().unmask(0).addBands(" in expr
    assert "img.select('SCL').remap([3, 8, 9, 10], [1, 1, 1, 1], 0).multiply(100)" in expr
    assert expr.endswith(f".mean().rename('{CLOUD_BAND}')).toFloat()")


def test_l1c_masks_both_qa60_bits(fake_ee):
    source = EarthEngineSource("L1C")
    [scene] = source.search(BBOX, *JUNE, max_cloud=5)
    expr = repr(source.composite(scene))
    assert "ImageCollection('COPERNICUS/S2_HARMONIZED')" in expr
    cloudy = ("img.select('QA60').bitwiseAnd(1024).neq(0)"
              ".Or(img.select('QA60').bitwiseAnd(2048).neq(0))")
    assert f".updateMask({cloudy}.Not())" in expr


def test_l1c_cloud_probability_join(fake_ee):
    source = EarthEngineSource("L1C", EarthEngineOptions(cloud_probability=True,
                                                         cloud_probability_threshold=30))
    [scene] = source.search(BBOX, *JUNE, max_cloud=5)
    expr = repr(source.composite(scene))
    assert ("Join.saveFirst('cloud_probability').apply(ImageCollection('COPERNICUS/S2_HARMONIZED')"
            in expr)
    assert "ImageCollection('COPERNICUS/S2_CLOUD_PROBABILITY'), Filter.equals(" \
           "leftField='system:index', rightField='system:index'))" in expr
    assert "Image(img.get('cloud_probability')).select('probability').lt(30.0)" in expr


def test_read_fetches_each_grid_in_its_crs_with_bounded_concurrency(fake_ee):
    source = EarthEngineSource("L2A", EarthEngineOptions(max_concurrent_requests=3))
    [scene] = source.search(BBOX, *JUNE, max_cloud=5)
    grids = [PatchGrid.around(-97.9 + 0.01 * k, 49.7) for k in range(7)]
    patches = source.read(scene, grids)
    ok = [r for r in fake_ee.requests[1:]]  # the first call met a quota error and was retried
    assert len(fake_ee.requests) == len(grids) + 1 and len(ok) == len(grids)
    assert fake_ee.max_in_flight <= 3
    by_x = {r["grid"]["affineTransform"]["translateX"]: r for r in ok}
    for grid in grids:
        req = by_x[grid.bounds[0]]
        assert req["fileFormat"] == "NUMPY_NDARRAY"
        assert req["grid"] == {
            "dimensions": {"width": 64, "height": 64},
            "affineTransform": {"scaleX": 10.0, "shearX": 0, "translateX": grid.bounds[0],
                                "shearY": 0, "scaleY": -10.0, "translateY": grid.bounds[3]},
            "crsCode": "EPSG:3978"}
        assert req["bandIds"] == [*BAND_NAMES, CLOUD_BAND]
    refl = patches.reflectance
    assert refl.shape == (7, 12, 64, 64)
    np.testing.assert_allclose(refl[:, 3, 10, 10], (1234 + 3) / 10000, rtol=1e-6)
    assert np.isnan(refl[:, 0, :4, :4]).all() and not patches.clear[:, :4, :4].any()
    assert patches.clear[:, 10:, 10:].all()
    assert patches.cloud[:, :, :8].all() and not patches.cloud[:, :, 8:].any()


def test_permanent_errors_are_not_retried(fake_ee):
    source = EarthEngineSource("L2A")
    [scene] = source.search(BBOX, *JUNE, max_cloud=5)
    fake_ee.failures_left = 0
    fake_ee.data.computePixels = lambda request: (_ for _ in ()).throw(
        RuntimeError("Image.select: Pattern 'B99' did not match any bands."))
    with pytest.raises(RuntimeError, match="did not match"):
        source.read(scene, [PatchGrid.around(-97.9, 49.7)])


def test_missing_extra_says_what_to_install(monkeypatch):
    from cropland.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ee", None)
    with pytest.raises(ConfigError, match=r"cropland\[gee\]"):
        EarthEngineSource("L2A").search(BBOX, *JUNE, max_cloud=5)
