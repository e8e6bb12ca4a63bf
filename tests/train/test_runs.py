"""Training runs: an interrupted run resumes to the same weights, a one-item last batch
trains, and predict prepares images as training did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import cropland.train.loop as loop
from cropland.train.config import TrainConfig
from tests.data.synthetic import synthetic_samples, write_png_tree


@pytest.fixture(scope="module")
def png_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    samples = synthetic_samples(
        n_points=30, years=(2019,), size=65, seed=1, classes=("BARLEY", "CORN", "OAT", "SOYBEAN")
    )
    write_png_tree(root, list(samples), ("RGB",))
    return root


def _config(root: Path, out: Path, **changes) -> TrainConfig:
    return TrainConfig(**{"dataset": root, "out": out, "device": "cpu", "resize": 16, "batch_size": 16, **changes})


def test_interrupted_run_resumes_to_the_same_weights(png_tree, tmp_path, monkeypatch):
    """tempcnn has dropout: the resumed epochs must draw the masks an uninterrupted run draws."""
    cfg = {"model": "tempcnn", "epochs": 3}
    loop.train(_config(png_tree, tmp_path / "straight", **cfg))
    real_write = loop.write_text_atomic

    def crash_after_first_epoch(path, text):
        real_write(path, text)
        if Path(path).name == "history.json":
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "write_text_atomic", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        loop.train(_config(png_tree, tmp_path / "resumed", **cfg))
    monkeypatch.setattr(loop, "write_text_atomic", real_write)
    loop.train(_config(png_tree, tmp_path / "resumed", **cfg), resume=True)
    straight, resumed = (torch.load(tmp_path / name / "last.pt", weights_only=True) for name in ("straight", "resumed"))
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in straight["history"]]
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0)


def test_one_item_last_batch_trains_batch_norm_models(png_tree, tmp_path):
    """ResNet-50 on 32 px images ends in a 1 x 1 map: batch norm cannot train on one item."""
    data = loop.prepare_data(
        loop.resolve_config(_config(png_tree, tmp_path / "probe", model="small_cnn")), torch.device("cpu")
    )
    n = len(data.train)
    assert n % (n - 1) == 1
    metrics = loop.train(_config(png_tree, tmp_path / "run", model="resnet50", resize=32, batch_size=n - 1, epochs=1))
    assert metrics["epochs_run"] == 1 and metrics["test"]["n"] == metrics["items"]["test"]


def test_data_of_a_config_with_temporal_mode_auto(png_tree, tmp_path):
    """prepare_data resolves ``auto`` itself: tempcnn takes series, lrcn triplets."""
    for model, mode in (("tempcnn", "series"), ("lrcn", "triplet")):
        data = loop.prepare_data(_config(png_tree, tmp_path / model, model=model), torch.device("cpu"))
        assert data.spec.temporal_mode == mode and data.train.temporal


def test_predict_crops_like_the_packed_training_data(png_tree, tmp_path):
    """A model trained on a pack cropped to 64 px predicts 65 px PNGs cropped to 64 px too."""
    from cropland.data.pack import pack
    from cropland.train.predict import predict_point

    packed = tmp_path / "packed"
    pack(png_tree, packed, channels="RGB", size=64)
    run = tmp_path / "run"
    loop.train(_config(packed, run, model="small_cnn", resize=None, epochs=1))
    assert torch.load(run / "best.pt", weights_only=True)["spec"]["size"] == 64
    from_pack = predict_point(run, packed, 1, 2019, device="cpu")
    from_tree = predict_point(run, png_tree, 1, 2019, device="cpu")
    for a, b in zip(from_pack, from_tree, strict=True):
        assert a["item"] == b["item"]
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), rtol=1e-5)


def test_predict_renders_geotiffs_as_the_training_pngs_were(tmp_path):
    """A model trained on a build's PNGs (non-default rendering) gets the same input from the
    sample's GeoTIFF as from its PNG."""
    from cropland.config import parse_config
    from cropland.pipeline import build_dataset
    from cropland.train.predict import predict_files

    out = tmp_path / "build"
    build_dataset(parse_config({
        "years": [2019], "months": [7], "classes": ["CANOLA", "CORN"], "output": str(out), "seed": 2,
        "points": {"synthetic_per_class": 10, "synthetic_clusters": 1}, "render": {"rgb_max": 0.6},
    }), progress=False)
    run = tmp_path / "run"
    loop.train(_config(out, run, source="png", model="small_cnn", resize=None, epochs=1))
    assert torch.load(run / "best.pt", weights_only=True)["spec"]["render"]["rgb_max"] == 0.6
    tif = next((out / "tif").rglob("*.tif"))
    png = next(out.glob(f"2019/RGB/*/*/{tif.stem}_RGB.png"))
    [from_tif], [from_png] = predict_files(run, [tif], "cpu"), predict_files(run, [png], "cpu")
    np.testing.assert_allclose(list(from_tif["probabilities"].values()), list(from_png["probabilities"].values()),
                               rtol=1e-6)
