"""Loading a release with cropland.data (local, over HTTP, the original zips) and TorchGeo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from cropland.core.naming import IMAGE_TYPES
from cropland.data import GeoTiffReader, PngTreeReader, open_reader
from cropland.data.datasets import StaticDataset, TemporalDataset
from cropland.data.original import ZipTreeReader
from cropland.data.shards import ShardReader
from cropland.errors import DatasetError
from cropland.publish import publish
from tests.data.fakedata import make_png_tree
from tests.data.test_readers import assert_subset_reads_the_same
from tests.sources.loopback import RangeServer


def test_reader_gives_the_pngs_and_the_geotiffs(dataset: Path, release: Path):
    pngs, tifs = PngTreeReader(dataset), GeoTiffReader(dataset)
    shards = open_reader(release, "RGB,NDVI")
    assert isinstance(shards, ShardReader) and shards.classes == pngs.classes
    assert [r for r in shards.records] == [r for r in pngs.records]
    for i in range(0, len(pngs.records), 7):
        np.testing.assert_array_equal(shards.read_stored(i, shards.channels), pngs.read_stored(i, shards.channels))
    assert_subset_reads_the_same(shards, [len(shards.records) - 1, 0, 5])
    arrays = open_reader(release, "all")
    assert arrays.channels == tifs.channels
    for i in range(0, len(tifs.records), 5):
        np.testing.assert_array_equal(arrays.read(i, arrays.channels), tifs.read(i, tifs.channels))


def test_static_and_temporal_datasets_match_the_geotiffs(dataset: Path, release: Path):
    for cls, kwargs in ((StaticDataset, {}), (TemporalDataset, {"mode": "series", "months": (7, 8, 9)})):
        ours = cls(open_reader(release, "bands"), "validation", "B8,B4", **kwargs)
        theirs = cls(GeoTiffReader(dataset), "validation", "B8,B4", **kwargs)
        assert len(ours) == len(theirs) > 0
        for i in (0, len(ours) - 1):
            a, b = ours[i], theirs[i]
            np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())
            assert int(a["label"]) == int(b["label"]) and a["point_id"] == b["point_id"]


def test_streams_over_http_reading_only_what_it_needs(dataset: Path, tmp_path: Path):
    pytest.importorskip("aiohttp", reason="fsspec's HTTP file system needs aiohttp (the publish extra)")
    release = publish(dataset, tmp_path / "release")  # default shards: one per split
    server = RangeServer(release)
    try:
        reader = open_reader(f"{server.url}/", "RGB")
        local = PngTreeReader(dataset)
        last = len(local.records) - 1
        np.testing.assert_array_equal(
            reader.read_stored(last, reader.channels), local.read_stored(last, reader.channels)
        )
        total = sum(p.stat().st_size for p in (release / "data" / "static").glob("*.parquet"))
        assert 0 < server.counters.bytes < total / 2  # metadata columns and one row group, not the shards
    finally:
        server.stop()


def _original_zips(tmp: Path) -> tuple[Path, Path]:
    """The published layout rendered by the tests, zipped one zip per year and image type."""
    tree = tmp / "tree"
    points = {1: ("BARLEY", "training"), 2: ("CORN", "validation"), 3: ("OAT", "test"), 4: ("BARLEY", "training")}
    make_png_tree(tree, points, {p: [6, 7, 8] for p in points}, types=IMAGE_TYPES)
    zips = tmp / "zips"
    zips.mkdir()
    for folder in sorted(tree.glob("*/*")):
        with zipfile.ZipFile(zips / f"{folder.parent.name}_{folder.name}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for png in sorted(folder.rglob("*.png")):
                zf.write(png, png.relative_to(tree).as_posix())
            zf.writestr("__MACOSX/._junk.png", b"not a png")
    return tree, zips


def test_original_zips_read_in_place_and_republish(tmp_path: Path):
    tree, zips = _original_zips(tmp_path)
    in_zips, unpacked = ZipTreeReader(zips), PngTreeReader(tree)
    assert in_zips.records == unpacked.records and in_zips.image_types == IMAGE_TYPES
    for i in range(len(unpacked.records)):
        np.testing.assert_array_equal(
            in_zips.read_stored(i, in_zips.channels), unpacked.read_stored(i, in_zips.channels)
        )
    assert_subset_reads_the_same(in_zips, [len(in_zips.records) - 1, 0, 5])
    assert isinstance(open_reader(zips, "RGB"), ZipTreeReader)
    points = tmp_path / "points.csv"
    points.write_text("point_id,year,lon,lat,province,aci_code,label\n" + "".join(
        f"{p},2019,{-110 + p},{50 + p / 10},AB,{c},{n}\n" for p, c, n in
        ((1, 133, "BARLEY"), (2, 147, "CORN"), (3, 136, "OAT"), (4, 133, "BARLEY"))))
    release = publish(zips, tmp_path / "release", points=points)
    header = yaml.safe_load((release / "README.md").read_text().split("---")[1])
    assert header["license"] == "other" and "DATA_LICENSE" in header["license_link"]
    assert "Montreal Data License" in (release / "README.md").read_text()
    rows = pq.read_table(release / "data" / "static" / "train-00000-of-00001.parquet").to_pylist()
    png = tree / "2019" / "NDWI" / "training" / "BARLEY" / "POINT_1_201906_AB_BARLEY_NDWI.png"
    assert rows[0]["ndwi"]["bytes"] == png.read_bytes() and rows[0]["lon"] == -109.0
    assert "multispectral" not in rows[0]
    with pytest.raises(DatasetError, match="PNGs only"):
        open_reader(release, "all")


def test_cli_publishes_and_names_a_bad_folder(dataset: Path, tmp_path: Path):
    cli = [sys.executable, "-m", "cropland.cli", "publish"]
    done = subprocess.run([*cli, str(dataset), "--out", str(tmp_path / "r"), "--max-shard-mb", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "croissant.json").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    bad = subprocess.run([*cli, str(dataset), "--out", str(tmp_path / "mine")], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "400"})
    assert bad.returncode == 2 and "not a release of `cropland publish`" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_torchgeo_dataset_and_datamodule(release: Path):
    pytest.importorskip("torchgeo")
    from matplotlib.figure import Figure

    from cropland.data.torchgeo import CanadianCropland, CanadianCroplandDataModule

    counts = {s: len(CanadianCropland(release, s)) for s in ("train", "val", "test")}
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (release / "data" / "static").glob("*.parquet"))
    assert sum(counts.values()) == rows and all(counts.values())
    ds = CanadianCropland(release, "val", bands=("B4", "B3", "B2", "NDVI"), checksum=True)
    sample = ds[0]
    assert set(sample) == {"image", "label"} and sample["image"].shape == (4, 64, 64)
    assert sample["image"].dtype.is_floating_point and 0 <= int(sample["label"]) < len(ds.classes)
    sample["prediction"] = sample["label"]
    assert isinstance(ds.plot(sample, suptitle="test"), Figure)
    png = CanadianCropland(release, "test", bands=("RGB_R", "RGB_G", "RGB_B"))
    assert png[0]["image"].max() <= 1 and isinstance(png.plot(png[0]), Figure)
    with pytest.raises(DatasetError, match="download=True"):
        CanadianCropland(release / "missing", "train")
    module = CanadianCroplandDataModule(batch_size=4, root=release, bands=("B8", "B4"))
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (4, 2, 64, 64) and batch["label"].shape == (4,)
