"""Composites for the export tests: random whole-DN reflectance, real writers downstream."""

from __future__ import annotations

import numpy as np

from cropland.core.composite import Composite
from cropland.core.grid import PatchGrid
from cropland.core.naming import SampleName


def make_composite(
    point_id: int = 2,
    year: int = 2019,
    month: int = 9,
    province: str = "AB",
    label: str = "BARLEY",
    size: int = 64,
    seed: int = 0,
) -> Composite:
    """A composite of random reflectance (whole DN / 10000); 2x3 pixels without observation."""
    rng = np.random.default_rng(seed)
    dn = rng.integers(100, 6000, (12, size, size))
    reflectance = (dn / 10000).astype(np.float32)  # whole DN, as from Sentinel-2
    valid = rng.integers(1, 5, (size, size)).astype(np.uint16)
    reflectance[:, 5:7, 10:13] = np.nan
    valid[5:7, 10:13] = 0
    return Composite(
        sample=SampleName(point_id, year, month, province, label),
        grid=PatchGrid.around(-113.49, 53.54, size=size),
        reflectance=reflectance,
        valid=valid,
        scenes=["S2A_MSIL2A_20190903_T12UUA", "S2B_MSIL2A_20190913_T12UUA"],
        cloud_fraction=0.125,
        aci_code=133,
        synthetic=True,
    )


SOURCE = {"kind": "simulator", "level": "L2A"}
