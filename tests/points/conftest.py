"""Fixtures: ACI rasters with known fields, the real 2019 point list."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.points.aci_fields import ORIGINAL_CSV, field_layout, write_aci


@pytest.fixture
def aci_2019(tmp_path: Path) -> Path:
    return write_aci(tmp_path / "aci_2019.tif", field_layout(2019))


@pytest.fixture
def aci_2020(tmp_path: Path) -> Path:
    return write_aci(tmp_path / "aci_2020.tif", field_layout(2020))


@pytest.fixture
def original_csv() -> Path:
    if not ORIGINAL_CSV.exists():
        pytest.skip(f"real 2019 point list not found at {ORIGINAL_CSV} (shared data absent)")
    return ORIGINAL_CSV
