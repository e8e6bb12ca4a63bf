"""Training: a tiny model overfits; evaluation counts each item once with its own label;
runs save their config, resume, and the CLI trains, evaluates, benchmarks and predicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from cropland.cli import app
from cropland.data.tensors import TensorSplit
from cropland.models import create_model
from cropland.train.loop import predict_split
from tests.data.synthetic import synthetic_samples, write_png_tree

runner = CliRunner()


def test_tiny_model_overfits_a_small_batch():
    torch.manual_seed(0)
    x = torch.randn(16, 4, 16, 16)
    y = torch.arange(16) % 4
    model = create_model("small_cnn", 4, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < 0.05
    assert (model(x).argmax(1) == y).all()


class _Oracle(torch.nn.Module):
    """Predicts the class written into the image (the image's mean value)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.nn.functional.one_hot(x.mean(dim=(1, 2, 3)).round().long(), self.classes).float() * 10


def test_evaluation_predicts_every_item_once_with_its_own_label():
    n, classes = 37, 5  # 37 is not a multiple of the batch size: the last batch is partial
    labels = torch.tensor(np.random.default_rng(0).integers(0, classes, n))
    pool = labels.float().view(n, 1, 1, 1).expand(n, 2, 4, 4).contiguous()
    split = TensorSplit(pool=pool, rows=torch.arange(n), labels=labels, months=torch.zeros(n, dtype=torch.long),
                        scale=1.0, names=[str(i) for i in range(n)])
    probs = predict_split(_Oracle(classes), split, batch_size=8, device=torch.device("cpu"))
    assert probs.shape == (n, classes)
    assert (probs.argmax(1) == labels.numpy()).all()
    order = torch.randperm(n)  # items stored in another order are still matched to their own labels
    shuffled = TensorSplit(pool=pool[order], rows=torch.argsort(order), labels=labels, months=split.months,
                           scale=1.0, names=split.names)
    assert (predict_split(_Oracle(classes), shuffled, 6, torch.device("cpu")).argmax(1) == labels.numpy()).all()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("png")
    samples = list(
        synthetic_samples(
            n_points=30, years=(2019, 2020), size=65, seed=1, classes=("BARLEY", "CORN", "OAT", "SOYBEAN")
        )
    )
    write_png_tree(root, samples, ("RGB", "NDVI"))
    return root


def _invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_train_resume_evaluate_predict(dataset, tmp_path):
    packed = tmp_path / "packed"
    _invoke("pack", dataset, packed, "--channels", "RGB,NDVI", "--size", "64")
    run = tmp_path / "run"
    common = ("--dataset", packed, "--out", run, "--model", "tempcnn", "--channels", "RGB,NDVI",
              "--batch-size", "16", "--resize", "32", "--device", "cpu", "--seed", "3")
    _invoke("train", *common, "--epochs", "1")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["temporal_mode"] == "series" and config["device"] == "cpu" and config["seed"] == 3
    respelled = ("--dataset", packed / ".." / "packed", *common[2:])  # the same folder, named differently
    out = _invoke("train", *respelled, "--epochs", "2", "--resume")
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    metrics = json.loads((run / "metrics.json").read_text())
    predictions = (run / "predictions.csv").read_text().splitlines()[1:]
    assert (
        metrics["test"]["n"]
        == metrics["items"]["test"]
        == len(predictions)
        == len({p.split(",")[0] for p in predictions})
    )
    assert f"{metrics['test']['accuracy']:.3f}" in out
    assert f"{metrics['test']['accuracy']:.3f}" in _invoke("evaluate", run)
    lines = _invoke("predict", run, "--dataset", dataset, "--point", "1", "--year", "2019").splitlines()
    assert json.loads(lines[-1])["item"] == "POINT_1_2019"
    result = runner.invoke(app, ["train", *map(str, common), "--epochs", "1"])
    assert result.exit_code != 0 and "--resume" in str(result.exception)


def test_benchmark_writes_the_report(dataset, tmp_path):
    out = tmp_path / "bench"
    _invoke("benchmark", "--dataset", dataset, "--out", out, "--models", "small_cnn,cnn3d", "--seeds", "0,1",
            "--epochs", "1", "--device", "cpu")
    report = (out / "report.md").read_text()
    assert "| cnn3d | temporal | RGB | 2 |" in report and "| small_cnn | static | RGB | 2 |" in report
    assert "LRCN-64" in report  # the paper's table
    for name in ("confusion_small_cnn_RGB.png", "confusion_cnn3d_RGB.png", "learning_curves_RGB.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 4
    accuracy = [r["test"]["accuracy"] for r in results if r["model"] == "cnn3d"]
    assert f"{np.mean(accuracy):.3f} +- {np.std(accuracy, ddof=1):.3f}" in report
