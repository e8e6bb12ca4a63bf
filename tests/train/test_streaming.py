"""Training that streams: the same batches as the resident path, a run that does not fit the
device streams and learns as well, and a model evaluates on data lacking one of its classes."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import cropland.train.loop as loop
from cropland.core.naming import SampleName
from cropland.data.datasets import StaticDataset, TemporalDataset, compute_stats
from cropland.data.pack import pack
from cropland.data.preprocess import Preprocessing
from cropland.data.readers import PackedReader
from cropland.data.stream import StreamSplit
from cropland.data.tensors import load_tensors
from cropland.train.config import TrainConfig
from tests.data.synthetic import synthetic_samples, write_png_tree

CLASSES = ("BARLEY", "CORN", "OAT", "SOYBEAN")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    samples = synthetic_samples(n_points=40, years=(2019, 2020), size=65, seed=4, classes=CLASSES)
    write_png_tree(root, list(samples), ("RGB",))
    return root


@pytest.fixture(scope="module")
def packed(tree, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed")
    pack(tree, out, channels="RGB", size=64)
    return out


@pytest.mark.parametrize("temporal", [False, True])
def test_streamed_batches_equal_resident_batches(packed, temporal):
    """Same order, same crop, resize, normalisation and augmentation, value for value."""
    reader = PackedReader(packed)
    dataset = TemporalDataset(reader, "training") if temporal else StaticDataset(reader, "training")
    prep = Preprocessing(None, 16, compute_stats(dataset))
    resident = load_tensors(dataset, prep)
    streamed = StreamSplit(dataset, prep, workers=2, prefetch=2)
    assert len(streamed) == len(resident) == len(dataset)
    pairs = zip(resident.batches(24, True, True, torch.Generator().manual_seed(5)),
                streamed.batches(24, True, True, torch.Generator().manual_seed(5)), strict=True)
    for a, b in pairs:
        assert torch.equal(a.index, b.index) and torch.equal(a.y, b.y) and torch.equal(a.months, b.months)
        torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
        assert (a.mask is None) == (not temporal) and (a.mask is None or torch.equal(a.mask, b.mask))
    # and both are what the dataset's items give, resized independently (2 x 2 means of 32 px)
    first = next(streamed.batches(4))
    for k in range(4):
        item = dataset[int(first.index[k])]["image"]
        small = item.reshape(*item.shape[:-2], 16, 4, 16, 4).mean(dim=(-1, -3))
        expected = (small - torch.tensor(prep.normalization.mean, dtype=torch.float32).view(-1, 1, 1)) / \
            torch.tensor(prep.normalization.std, dtype=torch.float32).view(-1, 1, 1)
        if temporal:
            expected = expected * first.mask[k].view(-1, 1, 1, 1)
        torch.testing.assert_close(first.x[k], expected, rtol=1e-5, atol=1e-5)


def test_packed_reader_pickles_without_its_arrays(packed):
    """A worker started by spawn gets the reader's index, not a copy of the mapped images."""
    reader = PackedReader(packed)
    expected = reader.read_many([3, 0, 7], ("RGB_R", "RGB_G", "RGB_B"), None)
    blob = pickle.dumps(reader)
    assert len(blob) < (packed / "training_images.npy").stat().st_size / 4
    np.testing.assert_array_equal(pickle.loads(blob).read_many([3, 0, 7], ("RGB_R", "RGB_G", "RGB_B"), None), expected)


def _config(dataset: Path, out: Path, **changes) -> TrainConfig:
    return TrainConfig(**{"dataset": dataset, "out": out, "device": "cpu", "model": "tempcnn", "resize": 16,
                          "batch_size": 16, "epochs": 3, "seed": 1, **changes})


def test_a_run_that_does_not_fit_streams_and_learns_as_the_resident_run(packed, tmp_path):
    resident = loop.train(_config(packed, tmp_path / "resident"))
    streamed = loop.train(_config(packed, tmp_path / "streamed", device_memory_mb=0.05))  # the splits take ~0.4 MiB
    assert resident["loading"] == "resident" and streamed["loading"] == "stream"
    assert resident["test"]["accuracy"] > 0.5  # it learnt (chance: 0.25)
    assert abs(streamed["test"]["accuracy"] - resident["test"]["accuracy"]) <= 0.05
    histories = [json.loads((tmp_path / run / "history.json").read_text()) for run in ("resident", "streamed")]
    np.testing.assert_allclose(
        [h["train_loss"] for h in histories[1]], [h["train_loss"] for h in histories[0]], rtol=1e-4
    )


def _copy_without(tree: Path, out: Path, dropped: str) -> Path:
    """The tree's files of every class but ``dropped`` (with its splits.json)."""
    for path in tree.rglob("*.png"):
        if path.parent.name != dropped:
            target = out / path.relative_to(tree)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    shutil.copy(tree / "splits.json", out / "splits.json")
    return out


def test_a_model_evaluates_on_data_lacking_one_of_its_classes(tree, tmp_path):
    from cropland.train.predict import evaluate_run, predict_files

    run = tmp_path / "run"
    loop.train(_config(tree, run, model="small_cnn", epochs=2, source="png"))
    lacking = _copy_without(tree, tmp_path / "no-oat", "OAT")
    metrics = evaluate_run(run, "test", dataset=lacking, device="cpu")
    files = sorted(lacking.glob("*/RGB/test/*/*.png"))
    predicted = {r["item"]: r["predicted"] for r in predict_files(run, files, "cpu")}
    labels = {SampleName.parse(f.name)[0].stem: f.parent.name for f in files}
    assert metrics["n"] == len(files) and "OAT" not in labels.values()
    assert metrics["accuracy"] == pytest.approx(np.mean([predicted[k] == labels[k] for k in labels]))
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (4, 4) and confusion[CLASSES.index("OAT")].sum() == 0
    for k, name in enumerate(CLASSES):
        assert confusion[k].sum() == sum(v == name for v in labels.values())


def test_the_class_list_comes_from_the_configuration(tree, tmp_path):
    """A dataset that declares a class it has no sample of keeps that class's index."""
    import yaml

    from cropland.data.readers import PngTreeReader

    lacking = _copy_without(tree, tmp_path / "no-oat", "OAT")
    assert PngTreeReader(lacking, ["RGB"]).classes == ("BARLEY", "CORN", "SOYBEAN")
    (lacking / "config.yaml").write_text(yaml.safe_dump({"classes": list(CLASSES)}))
    reader = PngTreeReader(lacking, ["RGB"])
    assert reader.classes == CLASSES
    ds = StaticDataset(reader, "training")
    labels = {reader.records[r].name.label: int(ds[i]["label"]) for i, r in enumerate(ds.rows)}
    assert labels == {c: CLASSES.index(c) for c in labels}
