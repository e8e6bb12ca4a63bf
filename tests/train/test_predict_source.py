"""Predict one point and year through a source: the simulator of the demo configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cropland.cli import app
from cropland.config import demo_config_path
from cropland.data.channels import TIF_CHANNELS
from cropland.models import create_model


@pytest.fixture
def checkpoint(tmp_path):
    """An (untrained) tempcnn run on the 18 GeoTIFF channels, saved as `cropland train` saves it."""
    classes = [
        "BARLEY",
        "CANOLA",
        "CORN",
        "MIXEDWOOD",
        "OAT",
        "ORCHARD",
        "PASTURE",
        "POTATO",
        "SOYBEAN",
        "SPRING_WHEAT",
    ]
    meta = {"model": "tempcnn", "temporal": True, "temporal_mode": "series", "months": [6, 7, 8, 9, 10],
            "size": None, "resize": 16, "classes": classes, "channels": list(TIF_CHANNELS),
            "normalization": {c: {"mean": 0.0, "std": 1.0} for c in TIF_CHANNELS}}
    torch.manual_seed(0)
    model = create_model("tempcnn", len(TIF_CHANNELS), len(classes))
    torch.save({"model": model.state_dict(), "meta": meta, "epoch": 1}, tmp_path / "best.pt")  # as saved before RunSpec
    return tmp_path


def test_predict_a_point_through_the_simulator(checkpoint):
    result = CliRunner().invoke(app, ["predict", str(checkpoint), "--config", str(demo_config_path()),
                                      "--point", "3", "--year", "2019", "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r["item"] for r in lines] == ["POINT_3_2019"]
    probabilities = np.array(list(lines[0]["probabilities"].values()))
    assert probabilities.sum() == pytest.approx(1, abs=1e-5)
    assert lines[0]["predicted"] == max(lines[0]["probabilities"], key=lines[0]["probabilities"].get)


def test_prediction_inputs_are_prepared_as_in_training():
    """Resize before normalising, as training does: a pixel with no data spoils its whole area."""
    from cropland.train.spec import RunSpec

    image = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6)
    image[0, 1, 1] = np.nan
    spec = RunSpec(model="small_cnn", channels=("A", "B"), classes=("X", "Y"), months=(7,), temporal=False,
                   temporal_mode=None, size=4, resize=2,
                   normalization={"A": {"mean": 1.0, "std": 2.0}, "B": {"mean": 0.0, "std": 4.0}})
    cropped = image[:, 1:5, 1:5]
    expected = cropped.reshape(2, 2, 2, 2, 2).mean(axis=(2, 4))  # NaN propagates to its 2 x 2 block
    expected = (expected - np.array([1.0, 0.0])[:, None, None]) / np.array([2.0, 4.0])[:, None, None]
    np.testing.assert_allclose(spec.preprocessing(image).numpy(), np.nan_to_num(expected, nan=0.0), rtol=1e-6)
