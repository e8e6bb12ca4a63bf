"""A small dataset built by the real pipeline (simulator), and its release."""

from __future__ import annotations

from pathlib import Path

import pytest

from cropland.config import parse_config
from cropland.pipeline import build_dataset
from cropland.publish import publish


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 4 points, 2 years, July-September: 72 samples, PNGs, no raw zips."""
    out = tmp_path_factory.mktemp("dataset")
    cfg = parse_config({
        "years": [2019, 2020], "months": [7, 8, 9], "classes": ["CANOLA", "CORN", "PASTURE"],
        "points": {"synthetic_per_class": 4, "synthetic_clusters": 2},
        "output": str(out), "seed": 5, "export": {"raw_zip": False},
    })
    return build_dataset(cfg, progress=False).output


@pytest.fixture(scope="session")
def release(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset published with small shards (so splits have several)."""
    return publish(dataset, tmp_path_factory.mktemp("release") / "release", max_shard_mb=1)
