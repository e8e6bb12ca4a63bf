"""The raw zip: one single-band GeoTIFF per band, equal to the sample's bands."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cropland.errors import DatasetError
from cropland.export.geotiff import SAMPLE_BANDS, read_sample
from cropland.export.rawzip import write_raw_zip


def test_one_geotiff_per_band_with_the_sample_values(tmp_path: Path, sample_tif: Path) -> None:
    zip_path = write_raw_zip(sample_tif, tmp_path / "raw" / "s.zip")
    stem = "POINT_2_201909_AB_BARLEY"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    assert names[0] == f"{stem}.B1.tif" and names[11] == f"{stem}.B12.tif"
    assert names[12] == f"{stem}.NDVI.tif" and names[-1] == f"{stem}.VALID.tif"
    assert len(names) == 19

    data, tags = read_sample(sample_tif)
    with rasterio.open(sample_tif) as src:
        crs, transform = src.crs, src.transform
    for band, name in enumerate(SAMPLE_BANDS):
        with rasterio.open(f"zip://{zip_path}!{stem}.{name}.tif") as member:
            assert member.count == 1 and member.dtypes[0] == "float32"
            assert member.crs == crs and member.transform == transform
            assert member.descriptions == (name,)
            assert member.tags()["BAND"] == name
            assert member.tags()["POINT_ID"] == tags["POINT_ID"]
            np.testing.assert_array_equal(member.read(1), data[band])


def test_corrupt_source_leaves_no_zip(tmp_path: Path, sample_tif: Path) -> None:
    sample_tif.write_bytes(sample_tif.read_bytes()[:500])
    target = tmp_path / "raw" / "s.zip"
    with pytest.raises(DatasetError):
        write_raw_zip(sample_tif, target)
    assert not target.exists()


def test_the_same_sample_gives_the_same_zip_bytes_whenever_it_is_written(tmp_path, sample_tif, monkeypatch):
    import time

    first = write_raw_zip(sample_tif, tmp_path / "a.zip").read_bytes()
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 86_400 * 400)  # written a year later
    second = write_raw_zip(sample_tif, tmp_path / "b.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
