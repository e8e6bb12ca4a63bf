"""Readers: the published PNG tree (65 x 65), our GeoTIFFs, packed arrays, and their errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from cropland.core.naming import SampleName
from cropland.data import GeoTiffReader, PackedReader, PngTreeReader, open_reader
from cropland.data.channels import TIF_CHANNELS, resolve_channels
from cropland.data.datasets import StaticDataset, TemporalDataset
from cropland.data.pack import pack
from cropland.errors import DatasetError
from tests.data.fakedata import make_png_tree, make_tif_dataset, write_splits, write_tif

POINTS = {1: ("BARLEY", "training"), 2: ("CORN", "training"), 3: ("BARLEY", "validation"), 4: ("CORN", "test")}
MONTHS = {1: [6, 7, 8, 9, 10], 2: [6, 7, 8, 10], 3: [7, 8, 9], 4: [6, 9]}


@pytest.fixture
def png_tree(tmp_path):
    written = make_png_tree(tmp_path, POINTS, MONTHS)
    return tmp_path, written


@pytest.fixture
def tif_data(tmp_path):
    written = make_tif_dataset(tmp_path, POINTS, MONTHS, years=(2019, 2020))
    return tmp_path, written


def test_png_reader_reads_published_layout(png_tree):
    root, written = png_tree
    reader = PngTreeReader(root, ["RGB", "NDVI"])
    assert len(reader.records) == sum(len(m) for m in MONTHS.values())
    assert reader.classes == ("BARLEY", "CORN")
    assert reader.channels == ("RGB_R", "RGB_G", "RGB_B", "NDVI")
    assert {r.split for r in reader.records if r.name.point_id == 3} == {"validation"}
    i = next(i for i, r in enumerate(reader.records) if r.name == SampleName(2, 2019, 10, "AB", "CORN"))
    image = reader.read(i, reader.channels)
    assert image.shape == (4, 65, 65) and image.dtype == np.float32
    rgb = written[(reader.records[i].name, "RGB")]
    ndvi = written[(reader.records[i].name, "NDVI")]
    np.testing.assert_allclose(image[:3], rgb.transpose(2, 0, 1) / 255, atol=1e-7)
    np.testing.assert_allclose(image[3], ndvi[:, :, 0] / 255, atol=1e-7)
    assert reader.read_many([i], ("NDVI",), 64).shape == (1, 1, 64, 64)


def test_png_corrupt_and_wrong_channels_name_the_file(png_tree):
    root, _ = png_tree
    reader = PngTreeReader(root, ["RGB"])
    bad = reader.path(reader.records[0], "RGB")
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DatasetError, match=str(bad)):
        reader.read(0, ("RGB_R",))
    from PIL import Image

    grey = reader.path(reader.records[1], "RGB")
    Image.fromarray(np.zeros((65, 65), np.uint8)).save(grey)
    with pytest.raises(DatasetError, match=f"{grey}.*1 channel"):
        reader.read(1, ("RGB_R",))


def test_png_missing_type_names_the_file(png_tree):
    root, _ = png_tree
    reader = PngTreeReader(root, ["RGB", "NDVI"])
    missing = reader.path(reader.records[2], "NDVI")
    missing.unlink()
    with pytest.raises(DatasetError, match=f"{missing} is missing"):
        reader.read(2, reader.channels)


def test_point_in_two_splits_is_refused(png_tree):
    root, _ = png_tree
    src = next((root / "2019" / "RGB" / "training" / "BARLEY").glob("POINT_1_201906*"))
    target = root / "2019" / "RGB" / "test" / "BARLEY" / src.name.replace("201906", "201911")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(src.read_bytes())
    with pytest.raises(DatasetError, match="point 1 is in both"):
        PngTreeReader(root, ["RGB"])


def test_geotiff_reader_channels_and_splits_from_splits_json(tif_data):
    root, written = tif_data
    reader = GeoTiffReader(root)
    assert len(reader.records) == 2 * sum(len(m) for m in MONTHS.values())
    assert {r.split for r in reader.records if r.name.point_id == 4} == {"test"}
    name = SampleName(2, 2020, 8, "AB", "CORN")
    i = next(i for i, r in enumerate(reader.records) if r.name == name)
    rgb = reader.read(i, resolve_channels("RGB", reader.channels))
    np.testing.assert_array_equal(rgb, written[name][[3, 2, 1]])
    everything = reader.read(i, resolve_channels("all", reader.channels))
    assert everything.shape == (18, 64, 64)
    np.testing.assert_array_equal(everything, written[name][:18])
    doc = json.loads((root / "splits.json").read_text())
    doc["assignments"]["4"] = "training"
    (root / "splits.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match="checksum mismatch"):  # edited by hand: refused
        GeoTiffReader(root)
    write_splits(root, {int(k): v for k, v in doc["assignments"].items()})
    assert {r.split for r in GeoTiffReader(root).records if r.name.point_id == 4} == {"training"}


def test_geotiff_wrong_band_count_and_corrupt_file_name_the_file(tif_data):
    root, _ = tif_data
    reader = GeoTiffReader(root)
    path = reader.paths[reader.records[0].name]
    write_tif(path, np.zeros((5, 64, 64), np.float32))
    with pytest.raises(DatasetError, match=f"{path} has 5 bands, expected 19"):
        reader.read(0, ("B4",))
    path.write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(DatasetError, match=f"{path} cannot be read"):
        reader.read(0, ("B4",))


def test_missing_month_error_names_the_expected_file(tif_data):
    root, _ = tif_data
    reader = GeoTiffReader(root)
    with pytest.raises(DatasetError, match=r"tif/2019/CORN/POINT_2_201909_AB_CORN\.tif"):
        TemporalDataset(reader, "training", "RGB", mode="series", missing="error")


def test_channel_selection():
    assert resolve_channels("RGB", TIF_CHANNELS) == ("B4", "B3", "B2")
    assert resolve_channels("bands", TIF_CHANNELS) == TIF_CHANNELS[:12]
    assert resolve_channels("b08,NDVI", TIF_CHANNELS) == ("B8", "NDVI")
    assert resolve_channels("RGB", ("RGB_R", "RGB_G", "RGB_B", "NDVI")) == ("RGB_R", "RGB_G", "RGB_B")
    with pytest.raises(DatasetError, match="B8"):
        resolve_channels("B8", ("RGB_R", "RGB_G", "RGB_B"))
    with pytest.raises(DatasetError, match="twice"):
        resolve_channels("NDVI,NDVI", TIF_CHANNELS)


def test_pack_geotiffs_round_trip_and_checksums(tif_data, tmp_path_factory):
    root, written = tif_data
    out = tmp_path_factory.mktemp("packed")
    pack(root, out, channels="all")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["channels"] == list(TIF_CHANNELS)
    assert manifest["splits"]["training"]["count"] == 2 * (len(MONTHS[1]) + len(MONTHS[2]))
    packed = open_reader(out)
    assert isinstance(packed, PackedReader)
    tif = GeoTiffReader(root)
    assert [r.name for r in packed.records] == [r.name for r in tif.records]
    assert [r.split for r in packed.records] == [r.split for r in tif.records]
    for i in (0, 7, len(tif.records) - 1):
        expected = written[tif.records[i].name][:18].astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(packed.read(i, TIF_CHANNELS), expected)
    block = packed.read_many([5, 1, 9], ("NDVI", "B2"), None)
    np.testing.assert_array_equal(block[1].astype(np.float32), packed.read(1, ("NDVI", "B2")))
    images = out / manifest["splits"]["test"]["images"]["file"]
    images.write_bytes(images.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(DatasetError, match="checksum"):
        PackedReader(out)
    (out / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(DatasetError, match="version 99"):
        PackedReader(out)
    (out / "manifest.json").write_text("{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        PackedReader(out)


def assert_subset_reads_the_same(reader, indices: list[int]) -> None:
    """``reader.subset(indices)``, pickled as a worker receives it, reads those samples and is smaller."""
    part = pickle.loads(pickle.dumps(reader.subset(indices)))
    assert part.records == [reader.records[i] for i in indices]
    for k, i in enumerate(indices):
        np.testing.assert_array_equal(part.read_stored(k, reader.channels), reader.read_stored(i, reader.channels))
    assert len(pickle.dumps(part)) < len(pickle.dumps(reader))


def test_subsets_of_each_local_reader(tif_data, png_tree, tmp_path_factory):
    tif_root, _ = tif_data
    png_root, _ = png_tree
    packed = tmp_path_factory.mktemp("packed")
    pack(tif_root, packed, channels="all")
    for reader in (GeoTiffReader(tif_root), PngTreeReader(png_root), PackedReader(packed)):
        assert_subset_reads_the_same(reader, [len(reader.records) - 1, 0, 5])


def test_pack_in_worker_processes_writes_the_same_files(tif_data, tmp_path_factory):
    root, _ = tif_data
    alone, pooled = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    pack(root, alone, channels="all", workers=1)
    pack(root, pooled, channels="all", workers=2)
    arrays = [{p.name: p.read_bytes() for p in out.glob("*_*")} for out in (alone, pooled)]  # not the manifest,
    assert len(arrays[0]) == 6 and arrays[0] == arrays[1]  # which records when it was made


def test_pack_png_tree_keeps_uint8(png_tree, tmp_path_factory):
    root, _ = png_tree
    out = tmp_path_factory.mktemp("packed_png")
    pack(root, out, channels="RGB,NDVI", size=64)
    packed = PackedReader(out)
    png = PngTreeReader(root, ["RGB", "NDVI"])
    assert packed.arrays["training"].dtype == np.uint8
    ds_packed = StaticDataset(packed, "test", "RGB,NDVI")
    ds_png = StaticDataset(png, "test", "RGB,NDVI", size=64)
    for k in range(len(ds_png)):
        np.testing.assert_allclose(ds_packed[k]["image"].numpy(), ds_png[k]["image"].numpy(), atol=1e-6)
    with pytest.raises(DatasetError, match="needs GeoTIFF"):
        open_reader(root, "bands")
    assert open_reader(root, "all").channels == ("RGB_R", "RGB_G", "RGB_B", "NDVI")  # pack's default


def test_png_tree_must_agree_with_its_splits_json(png_tree):
    from tests.data.fakedata import write_splits

    root, _ = png_tree
    write_splits(root, {p: s for p, (_, s) in POINTS.items()})
    assert len(PngTreeReader(root, ["RGB"]).records) == sum(len(m) for m in MONTHS.values())
    write_splits(root, {**{p: s for p, (_, s) in POINTS.items()}, 3: "test"})
    with pytest.raises(DatasetError, match="splits.json puts point 3 in test"):
        PngTreeReader(root, ["RGB"])


def test_auto_source_prefers_geotiffs_for_all_channels(tmp_path):
    from cropland.data.readers import _guess_source

    (tmp_path / "tif").mkdir()
    (tmp_path / "2019").mkdir()
    assert _guess_source(tmp_path, "all") == "tif"
    assert _guess_source(tmp_path, "bands") == "tif"
    assert _guess_source(tmp_path, "RGB") == "png"
