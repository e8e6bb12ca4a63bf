"""A checkpoint cannot run code: `predict` and `evaluate` refuse a crafted pickle before it acts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from cropland.train.checkpoint import load_checkpoint


class _Payload:
    """Unpickling this object runs ``touch <marker>``: what a malicious best.pt would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": {}, "meta": _Payload(marker)}, tmp_path / "best.pt")
    result = subprocess.run(
        [sys.executable, "-m", "cropland.cli", "predict", str(tmp_path), str(tmp_path / "x.tif")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "not a checkpoint cropland can load safely" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_runs_checkpoints_load_with_weights_only(tmp_path):
    """What `cropland train` saves (random states included) is plain tensors and values."""
    from cropland.train.loop import rng_states, set_rng_states

    torch.save({"model": {"w": torch.ones(2)}, "rng": rng_states()}, tmp_path / "last.pt")
    state = load_checkpoint(tmp_path / "last.pt")
    expected = np.random.random()
    set_rng_states(state["rng"])
    assert np.random.random() == expected
