"""Fixtures of the export tests: a composite and its sample GeoTIFF (real writer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cropland.config import IndicesConfig
from cropland.core.composite import Composite
from cropland.export.geotiff import write_sample
from tests.export.export_fakes import SOURCE, make_composite


@pytest.fixture
def composite() -> Composite:
    return make_composite()


@pytest.fixture
def sample_tif(tmp_path: Path, composite: Composite) -> Path:
    path = tmp_path / "tif" / "2019" / "BARLEY" / f"{composite.sample.stem}.tif"
    return write_sample(composite, path, IndicesConfig(), SOURCE)
