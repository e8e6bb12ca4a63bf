"""The sample GeoTIFF: geometry, bands, index values, tags, corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from cropland.config import IndicesConfig
from cropland.errors import DatasetError
from cropland.export.geotiff import SAMPLE_BANDS, read_sample, write_sample
from tests.export.export_fakes import SOURCE, make_composite

BAND = {name: i for i, name in enumerate(SAMPLE_BANDS)}


@pytest.mark.parametrize("size", [64, 65])
def test_geometry_crs_and_layout(tmp_path: Path, size: int) -> None:
    composite = make_composite(size=size)
    path = write_sample(composite, tmp_path / "s.tif", IndicesConfig(), SOURCE)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 3978
        assert (src.width, src.height, src.count) == (size, size, 19)
        assert src.res == (10.0, 10.0)
        assert src.dtypes == ("float32",) * 19
        assert np.isnan(src.nodata)
        assert src.descriptions == (
            "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12",
            "NDVI", "NDVI45", "GNDVI", "OSAVI", "PSRI", "NDWI", "VALID",
        )
        assert set(src.block_shapes) == {(64, 64)}  # 64x64 tiles (65: four, three partial)
        assert src.compression.name == "deflate"
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"
        # The patch is centred on the point: the centre of the bounds is the point in EPSG:3978.
        x, y = Transformer.from_crs(4326, 3978, always_xy=True).transform(-113.49, 53.54)
        left, bottom, right, top = src.bounds
        assert (left + right) / 2 == pytest.approx(x, abs=1e-6)
        assert (bottom + top) / 2 == pytest.approx(y, abs=1e-6)
        assert right - left == pytest.approx(size * 10)


def test_reflectance_and_valid_round_trip(sample_tif: Path, composite) -> None:
    data, _ = read_sample(sample_tif)
    np.testing.assert_array_equal(data[:12], composite.reflectance)
    np.testing.assert_array_equal(data[BAND["VALID"]], composite.valid.astype(np.float32))
    assert np.isnan(data[:18, 5, 10]).all()  # no observation: NaN in every band and index
    assert data[BAND["VALID"], 5, 10] == 0


def test_index_values_equal_hand_computed(sample_tif: Path, composite) -> None:
    data, _ = read_sample(sample_tif)
    r = composite.reflectance.astype(np.float64)
    b2, b3, b4, b5, b6, b8, b11 = (r[i] for i in (1, 2, 3, 4, 5, 7, 10))
    expected = {
        "NDVI": (b8 - b4) / (b8 + b4),
        "NDVI45": (b5 - b4) / (b5 + b4),
        "GNDVI": (b8 - b3) / (b8 + b3),
        "OSAVI": (b8 - b4) / (b8 + b4 + 0.16),
        "PSRI": (b4 - b2) / b6,
        "NDWI": (b8 - b11) / (b8 + b11),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(data[BAND[name]], values, rtol=1e-5, equal_nan=True)


def test_index_options_original_and_mcfeeters(tmp_path: Path, composite) -> None:
    cfg = IndicesConfig(variant="original", ndwi="mcfeeters")
    data, tags = read_sample(write_sample(composite, tmp_path / "o.tif", cfg, SOURCE))
    r = composite.reflectance.astype(np.float64)
    b3, b4, b7, b8 = r[2], r[3], r[6], r[7]
    np.testing.assert_allclose(data[BAND["NDVI"]], (b7 - b4) / (b7 + b4), rtol=1e-5)
    np.testing.assert_allclose(
        data[BAND["OSAVI"]], 1.16 * (b8 - b4) / (b8 + b4 + 0.61), rtol=1e-5
    )
    np.testing.assert_allclose(data[BAND["NDWI"]], (b3 - b8) / (b3 + b8), rtol=1e-5)
    assert (tags["INDEX_VARIANT"], tags["NDWI"]) == ("original", "mcfeeters")


def test_tags_carry_provenance(sample_tif: Path, composite) -> None:
    _, tags = read_sample(sample_tif)
    assert tags["POINT_ID"] == "2" and tags["YEAR"] == "2019" and tags["MONTH"] == "9"
    assert (tags["PROVINCE"], tags["LABEL"], tags["ACI_CODE"]) == ("AB", "BARLEY", "133")
    assert tags["SCENES"].split(",") == composite.scenes
    assert tags["N_SCENES"] == "2"
    assert float(tags["CLOUD_FRACTION"]) == pytest.approx(0.125)
    assert float(tags["NODATA_FRACTION"]) == pytest.approx(6 / 64**2)
    assert tags["SYNTHETIC"] == "yes"
    assert json.loads(tags["SOURCE"]) == SOURCE
    assert (tags["INDEX_VARIANT"], tags["NDWI"]) == ("documented", "gao")
    assert tags["CROPLAND_VERSION"]


def test_tags_carry_reflectance_sanity_figures(tmp_path: Path) -> None:
    """Shares of negative and of above-1 values among the 12 bands' values with data."""
    composite = make_composite()
    composite.reflectance[3, :2, :] = -0.05  # 128 values of B4 below 0 (an offset too many)
    composite.reflectance[0, 40, :4] = 1.2  # 4 values of B1 above 1 (a bright cloud)
    composite.reflectance[1, 40, 4] = 1.0  # exactly 1: not above
    with_data = 12 * (64 * 64 - 6)
    _, tags = read_sample(write_sample(composite, tmp_path / "s.tif", IndicesConfig(), SOURCE))
    assert float(tags["NEGATIVE_FRACTION"]) == pytest.approx(128 / with_data)
    assert float(tags["ABOVE_ONE_FRACTION"]) == pytest.approx(4 / with_data)
    _, clean = read_sample(write_sample(make_composite(), tmp_path / "c.tif", IndicesConfig(),
                                        SOURCE))
    assert float(clean["NEGATIVE_FRACTION"]) == float(clean["ABOVE_ONE_FRACTION"]) == 0


def test_no_temporary_file_left(sample_tif: Path) -> None:
    assert [p.name for p in sample_tif.parent.iterdir()] == [sample_tif.name]


def test_truncated_file_is_a_dataset_error_naming_it(sample_tif: Path) -> None:
    content = sample_tif.read_bytes()
    sample_tif.write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetError, match=sample_tif.name):
        read_sample(sample_tif)


def test_garbage_and_missing_files_are_dataset_errors(tmp_path: Path) -> None:
    bad = tmp_path / "POINT_1_201906_AB_OAT.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(DatasetError, match="corrupt"):
        read_sample(bad)
    with pytest.raises(DatasetError, match="does not exist"):
        read_sample(tmp_path / "missing.tif")


def test_foreign_geotiff_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.tif"
    profile = dict(
        driver="GTiff", width=8, height=8, count=3, dtype="float32", crs="EPSG:3978",
        transform=Affine(10, 0, 0, 0, -10, 80),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(DatasetError, match="not a cropland sample"):
        read_sample(path)
