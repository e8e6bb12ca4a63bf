"""ACI readers: local GeoTIFF, remote COG over HTTP range requests, Earth Engine adapter."""

from __future__ import annotations

import http.server
import re
import sys
import threading
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from cropland.errors import PointsError
from cropland.points.aci import EarthEngineAci, RasterioAci, open_aci
from cropland.points.config import SampleConfig
from cropland.points.sample import find_candidates, locate_candidates
from tests.points.aci_fields import ORIGIN, RES, SHAPE, field_layout, write_aci


def test_local_window_reads_are_boundless(aci_2019):
    a = field_layout()
    with open_aci(aci_2019, 2019) as reader:
        assert (reader.width, reader.height, reader.nodata) == (160, 120, 0)
        np.testing.assert_array_equal(reader.read(Window(30, 20, 40, 50)), a[20:70, 30:70])
        edge = reader.read(Window(-5, -3, 10, 10))
    np.testing.assert_array_equal(edge[3:, 5:], a[:7, :5])
    assert (edge[:3] == 0).all() and (edge[:, :5] == 0).all()


def test_missing_file_and_geographic_crs_are_refused(tmp_path):
    with pytest.raises(PointsError, match="does not exist"):
        open_aci(tmp_path / "nope.tif")
    import rasterio
    from affine import Affine

    path = tmp_path / "geo.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(0.01, 0, -100, 0, -0.01, 50)) as dst:
        dst.write(np.ones((4, 4), np.uint8), 1)
    with pytest.raises(PointsError, match="projected CRS"):
        open_aci(path)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support; counts the bytes it sends."""

    sent = 0

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match:  # start-end, start- or -suffix_length
            start = int(match[1]) if match[1] else max(len(data) - int(match[2]), 0)
            end = min(int(match[2]) if match[1] and match[2] else len(data) - 1, len(data) - 1)
            body = data[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        type(self).sent += len(body)

    def do_HEAD(self):
        path = Path(self.translate_path(self.path))
        self.send_response(200 if path.is_file() else 404)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(path.stat().st_size if path.is_file() else 0))
        self.end_headers()


@pytest.fixture
def http_root(tmp_path):
    handler = type("Handler", (_RangeHandler,), {"sent": 0})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_remote_cog_is_read_with_range_requests(http_root):
    root, url, handler = http_root
    rng = np.random.default_rng(0)
    big = rng.integers(1, 255, size=(1024, 1024), dtype=np.uint8)  # incompressible
    path = write_aci(root / "aci_big.tif", big, block=256)
    with RasterioAci(f"{url}/aci_big.tif", 2019) as reader:
        assert (reader.width, reader.height) == (1024, 1024)
        got = reader.read(Window(300, 600, 64, 64))
    np.testing.assert_array_equal(got, big[600:664, 300:364])
    size = path.stat().st_size
    assert 0 < handler.sent < size / 4, (handler.sent, size)  # a tile or two, not the file


def test_remote_sampling_matches_local(http_root, aci_2019):
    root, url, _ = http_root
    write_aci(root / "aci.tif", field_layout())
    cfg = SampleConfig(year=2019, aci=["x"], classes=["CORN", "SOYBEAN"], min_purity=0.95)
    with open_aci(aci_2019) as local, open_aci(f"{url}/aci.tif") as remote:
        assert find_candidates(local, cfg).equals(find_candidates(remote, cfg))


def _zip(path: Path, members: dict[str, Path], compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip like AAFC's: the GeoTIFF in a folder, beside its metadata."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, file in members.items():
            z.write(file, name)
        z.writestr("metadata/aci_2019_en.xml", "<metadata/>")
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_zipped_geotiff_is_read_in_place(tmp_path, aci_2019, compression):
    archive = _zip(tmp_path / "aci_2019_geotiff.zip", {"aci_2019/aci_2019.tif": aci_2019},
                   compression)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    window = Window(-5, 40, 120, 90)  # partly outside: boundless
    with RasterioAci(aci_2019) as plain, RasterioAci(archive, 2019) as zipped:
        assert (zipped.width, zipped.height, zipped.crs) == (plain.width, plain.height, plain.crs)
        np.testing.assert_array_equal(zipped.read(window), plain.read(window))
    with RasterioAci(f"{archive}!aci_2019/aci_2019.tif") as named:
        np.testing.assert_array_equal(named.read(window), plain_read(aci_2019, window))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing unpacked


def plain_read(path: Path, window: Window) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1, window=window, boundless=True, fill_value=0)


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_remote_zip_is_read_through_vsizip_vsicurl(http_root, compression):
    root, url, handler = http_root
    big = np.random.default_rng(0).integers(1, 255, size=(2048, 2048), dtype=np.uint8)
    tif = write_aci(root / "aci_big.tif", big, block=256)
    archive = _zip(root / "aci_2019_geotiff.zip", {"aci_2019/aci_big.tif": tif}, compression)
    with RasterioAci(f"{url}/aci_2019_geotiff.zip", 2019) as reader:
        assert (reader.width, reader.height) == (2048, 2048)
        got = reader.read(Window(300, 1600, 64, 64))
    np.testing.assert_array_equal(got, big[1600:1664, 300:364])
    if compression == zipfile.ZIP_STORED:  # stored members are read with range requests
        assert 0 < handler.sent < archive.stat().st_size / 8


def test_zip_with_several_geotiffs_asks_for_a_name(tmp_path, aci_2019, aci_2020):
    archive = _zip(tmp_path / "both.zip", {"a/aci_2019.tif": aci_2019, "b/aci_2020.tif": aci_2020})
    with pytest.raises(PointsError, match=r"holds 2 GeoTIFFs .*both.zip!NAME.tif"):
        RasterioAci(archive)
    with RasterioAci(f"{archive}!b/aci_2020.tif") as reader:
        np.testing.assert_array_equal(reader.read(Window(0, 0, 50, 50)),
                                      plain_read(aci_2020, Window(0, 0, 50, 50)))
    with pytest.raises(PointsError, match="nope.zip does not exist"):
        RasterioAci(tmp_path / "nope.zip")


class FakeEarthEngine:
    """The part of the ``ee`` module the adapter uses, serving a known raster.

    ``computePixels`` answers NUMPY_NDARRAY requests like Earth Engine: a structured array
    with one field per band, for the requested grid; pixels outside the raster are 0.
    """

    def __init__(self, data: np.ndarray, origin: tuple[float, float], res: float):
        self.data, self.origin, self.res = data, origin, res
        self.calls: list[tuple] = []
        self.requests: list[dict] = []
        self.data_api = types.SimpleNamespace(computePixels=self._compute_pixels)

    def module(self) -> types.ModuleType:
        ee = types.ModuleType("ee")
        ee.Initialize = lambda project=None: self.calls.append(("Initialize", project))
        ee.ImageCollection = self._collection
        ee.data = self.data_api
        return ee

    def _collection(self, name):
        class Chain:
            def __init__(self, steps):
                self.steps = steps

            def __getattr__(self, method):
                return lambda *args: Chain([*self.steps, (method, *args)])

        self.calls.append(("ImageCollection", name))
        return Chain([("ImageCollection", name)])

    def _compute_pixels(self, request):
        self.requests.append(request)
        grid = request["grid"]
        t, dims = grid["affineTransform"], grid["dimensions"]
        assert request["fileFormat"] == "NUMPY_NDARRAY" and grid["crsCode"] == "EPSG:3978"
        assert t["scaleX"] == self.res and t["scaleY"] == -self.res
        col0 = round((t["translateX"] - self.origin[0]) / self.res)
        row0 = round((self.origin[1] - t["translateY"]) / self.res)
        out = np.zeros((dims["height"], dims["width"]), dtype=[("landcover", "u1")])
        rows, cols = self.data.shape
        r0, c0 = max(row0, 0), max(col0, 0)
        r1, c1 = min(row0 + dims["height"], rows), min(col0 + dims["width"], cols)
        if r1 > r0 and c1 > c0:
            out["landcover"][r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = \
                self.data[r0:r1, c0:c1]
        return out


@pytest.fixture
def fake_ee(monkeypatch):
    fake = FakeEarthEngine(field_layout(), ORIGIN, RES)
    monkeypatch.setitem(sys.modules, "ee", fake.module())
    return fake


def _region_of_test_raster() -> tuple[float, float, float, float]:
    from pyproj import Transformer

    left, top = ORIGIN
    right, bottom = left + SHAPE[1] * RES, top - SHAPE[0] * RES
    to_lonlat = Transformer.from_crs("EPSG:3978", "EPSG:4326", always_xy=True)
    return to_lonlat.transform_bounds(left, bottom, right, top)


def test_earth_engine_adapter_requests_and_pixels(fake_ee):
    reader = EarthEngineAci(2019, _region_of_test_raster(), project="my-project")
    assert ("Initialize", "my-project") in fake_ee.calls
    assert reader.image.steps == [
        ("ImageCollection", "AAFC/ACI"), ("filterDate", "2019-01-01", "2020-01-01"),
        ("first",), ("select", "landcover")]
    # The grid covers the raster and is snapped to 30 m: pixels line up with it.
    col0 = round((ORIGIN[0] - reader.transform.c) / RES)
    row0 = round((reader.transform.f - ORIGIN[1]) / RES)
    assert reader.width >= SHAPE[1] + col0 and reader.height >= SHAPE[0] + row0
    got = reader.read(Window(col0 + 30, row0 + 20, 40, 50))
    np.testing.assert_array_equal(got, field_layout()[20:70, 30:70])
    request = fake_ee.requests[-1]
    assert request["grid"]["dimensions"] == {"width": 40, "height": 50}
    assert request["expression"] is reader.image


def test_earth_engine_candidates_match_the_local_raster(fake_ee, aci_2019):
    cfg = SampleConfig(year=2019, aci=["x"], classes=["CORN", "SOYBEAN", "CANOLA"],
                       min_purity=0.85)
    remote = EarthEngineAci(2019, _region_of_test_raster())
    with open_aci(aci_2019) as local:
        want = locate_candidates(find_candidates(local, cfg, thin=False), local)
    got = locate_candidates(find_candidates(remote, cfg, thin=False), remote)
    def key(df):
        return sorted(zip(df["x"].round(3), df["y"].round(3), df["aci_code"], strict=True))

    assert len(want) > 0 and key(got) == key(want)


def test_earth_engine_without_the_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ee", None)  # import ee raises ImportError
    with pytest.raises(PointsError, match=r"cropland\[gee\]"):
        EarthEngineAci(2019, (-100, 50, -99, 51))
