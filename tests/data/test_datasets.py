"""Datasets: documented shapes, dtypes, masks, triplets, normalisation and the device path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cropland.data import GeoTiffReader
from cropland.data.augment import random_dihedral
from cropland.data.datasets import StaticDataset, TemporalDataset, compute_stats
from cropland.data.preprocess import Preprocessing
from cropland.data.tensors import load_tensors
from cropland.errors import DatasetError
from tests.data.fakedata import make_tif_dataset

POINTS = {1: ("BARLEY", "training"), 2: ("CORN", "training"), 3: ("OAT", "training"), 4: ("CORN", "test")}
MONTHS = {1: [6, 7, 8, 9, 10], 2: [6, 7, 8, 10], 3: [7, 9], 4: [6, 7, 8]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tifs")
    written = make_tif_dataset(root, POINTS, MONTHS, size=16)
    written[next(iter(written))][4, 3, 3] = np.nan  # the reader must keep NaN; write it into one file
    from tests.data.fakedata import write_tif

    name = next(iter(written))
    write_tif(root / "tif" / str(name.year) / name.label / f"{name.stem}.tif", written[name])
    return GeoTiffReader(root), written


def test_static_items(data):
    reader, written = data
    ds = StaticDataset(reader, "training", "RGB")
    assert len(ds) == 5 + 4 + 2
    item = ds[6]
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["label"].shape == ()
    assert (item["point_id"], item["year"], int(item["months"])) == (2, 2019, 7)
    assert ds.classes[int(item["label"])] == "CORN"
    name = reader.records[ds.rows[6]].name
    np.testing.assert_array_equal(item["image"].numpy(), written[name][[3, 2, 1]])


def test_normalisation_from_training_split(data):
    reader, written = data
    ds = StaticDataset(reader, "training", "B5,NDWI")
    stats = compute_stats(ds)
    train = np.stack([written[n][[4, 17]] for n in written if POINTS[n.point_id][1] == "training"])
    np.testing.assert_allclose(stats.mean, np.nanmean(train, axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(stats.std, np.nanstd(train, axis=(0, 2, 3)), rtol=1e-5)
    normed = np.stack(
        [StaticDataset(reader, "training", "B5,NDWI", normalization=stats)[i]["image"].numpy() for i in range(len(ds))]
    )
    assert not np.isnan(normed).any()  # NaN -> 0 after normalisation
    np.testing.assert_allclose(normed.mean(axis=(0, 2, 3)), 0, atol=1e-3)


def test_triplets_are_consecutive_months(data):
    reader, _ = data
    ds = TemporalDataset(reader, "training", "NDVI", mode="triplet")
    months = [tuple(ds[i]["months"].tolist()) for i in range(len(ds))]
    # point 1: 6-7-8, 7-8-9, 8-9-10; point 2 (6,7,8,10): 6-7-8 only; point 3 (7, 9): none
    assert months == [(6, 7, 8), (7, 8, 9), (8, 9, 10), (6, 7, 8)]
    item = ds[0]
    assert item["image"].shape == (3, 1, 16, 16) and item["mask"].all()


def test_series_has_a_mask_for_missing_months(data):
    reader, written = data
    ds = TemporalDataset(reader, "training", "all", mode="series")
    assert len(ds) == 3
    item = ds[1]  # point 2: months 6, 7, 8, 10
    assert item["image"].shape == (5, 18, 16, 16) and item["image"].dtype == torch.float32
    assert item["mask"].dtype == torch.bool and item["mask"].tolist() == [True, True, True, False, True]
    assert item["months"].tolist() == [6, 7, 8, 0, 10]
    assert (item["image"][3] == 0).all()
    name = next(n for n in written if n.point_id == 2 and n.month == 10)
    np.testing.assert_array_equal(item["image"][4].numpy(), written[name][:18])


def test_device_tensors_match_the_dataset(data):
    reader, _ = data
    for ds in (StaticDataset(reader, "training", "RGB,NDVI"), TemporalDataset(reader, "training", "RGB,NDVI")):
        stats = compute_stats(ds)
        ds.normalization = stats
        split = load_tensors(ds, Preprocessing(normalization=stats))
        batch = split.batch(torch.arange(len(ds)))
        expected = torch.stack([ds[i]["image"] for i in range(len(ds))])
        torch.testing.assert_close(batch.x, expected, atol=1e-5, rtol=1e-5)
        assert batch.y.tolist() == [int(ds[i]["label"]) for i in range(len(ds))]
        if batch.mask is not None:
            assert batch.mask.tolist() == [ds[i]["mask"].tolist() for i in range(len(ds))]


def test_augmentation_is_a_square_symmetry_shared_by_the_months():
    x = torch.arange(2 * 3 * 1 * 4 * 4, dtype=torch.float32).view(2, 3, 1, 4, 4)
    out = random_dihedral(x, torch.Generator().manual_seed(3))
    for b in range(2):
        candidates = [torch.rot90(v, k, (-2, -1)) for v in (x[b], x[b].flip(-1)) for k in range(4)]
        assert any(torch.equal(out[b], c) for c in candidates)
    seen = {
        tuple(random_dihedral(x[:1, 0], torch.Generator().manual_seed(s)).flatten()[:3].tolist()) for s in range(40)
    }
    assert len(seen) == 8


def test_datasets_are_exported_and_readers_need_no_torch():
    """`from cropland.data import StaticDataset` works (README); readers import without torch."""
    import subprocess
    import sys

    from cropland.data import StaticDataset, TemporalDataset  # noqa: F401

    code = "import sys; sys.modules['torch'] = None; import cropland.data; cropland.data.open_reader"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_datasets_open_a_folder_and_apply_transforms(data):
    """As TorchGeo's datasets: a root path, a split, channels and transforms (a function of the sample)."""
    reader, written = data
    ds = StaticDataset(reader.root, split="training", channels="RGB",
                       transforms=lambda s: {**s, "image": s["image"] * 2, "seen": True})
    item = ds[6]
    name = reader.records[ds.rows[6]].name
    np.testing.assert_array_equal(item["image"].numpy(), 2 * written[name][[3, 2, 1]])
    assert item["seen"] and ds.classes == ("BARLEY", "CORN", "OAT")
    series = TemporalDataset(str(reader.root), "test", "NDVI")
    assert len(series) == 1 and series[0]["mask"].tolist() == [True, True, True, False, False]
    with pytest.raises(DatasetError, match="unknown split 'train'"):
        StaticDataset(reader.root, split="train")


def test_a_fixed_class_list_sets_the_labels(data):
    reader, _ = data
    classes = ("BARLEY", "CANOLA", "CORN", "OAT")
    ds = StaticDataset(reader, "training", "RGB", classes=classes)
    expected = [classes.index(reader.records[r].name.label) for r in ds.rows]
    assert [int(ds[i]["label"]) for i in range(len(ds))] == expected and 1 not in expected
    with pytest.raises(DatasetError, match="samples of OAT, which are not among its classes"):
        StaticDataset(reader, "training", "RGB", classes=("BARLEY", "CORN"))


def test_the_geotiff_reader_takes_the_classes_of_the_configuration(tmp_path):
    import yaml

    make_tif_dataset(tmp_path, POINTS, MONTHS, size=4)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"classes": ["CORN", 146, "BARLEY", "OAT"]}))
    reader = GeoTiffReader(tmp_path)
    assert reader.classes == ("BARLEY", "CORN", "OAT", "SPRING_WHEAT")  # 146: spring wheat's ACI code
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"classes": ["CORN", "BARLEY"]}))
    with pytest.raises(DatasetError, match="samples of OAT"):
        GeoTiffReader(tmp_path)


def test_plot_shows_the_sample_and_its_prediction(data):
    from matplotlib.figure import Figure

    reader, _ = data
    ds = StaticDataset(reader, "training", "RGB")
    sample = ds[6]
    figure = ds.plot(sample)
    assert isinstance(figure, Figure) and figure._suptitle.get_text() == "label: CORN"
    shown = figure.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(shown, np.clip(sample["image"].numpy().transpose(1, 2, 0) / 0.3, 0, 1), rtol=1e-6)
    figure = ds.plot({**sample, "prediction": torch.tensor(0)}, suptitle="run 1")
    assert figure._suptitle.get_text() == "run 1\nlabel: CORN   prediction: BARLEY"
    series = TemporalDataset(reader, "training", "NDVI")
    figure = series.plot(series[1])  # point 2: months 6, 7, 8, 10
    assert [ax.get_title() for ax in figure.axes] == ["month 06", "month 07", "month 08", "missing", "month 10"]
