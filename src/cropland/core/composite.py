"""A composite: one sample in memory, a point's median composite for one month.

Extraction makes composites and export writes them; both speak of this type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cropland.core.grid import PatchGrid
from cropland.core.naming import SampleName


@dataclass
class Composite:
    """One sample: a point's median composite for one month, with its provenance."""

    sample: SampleName
    grid: PatchGrid
    reflectance: np.ndarray  # float32 (12, H, W), NaN where no clear observation
    valid: np.ndarray  # uint16 (H, W): clear observations that entered the median
    scenes: list[str]  # ids of the scenes searched and read for this month
    cloud_fraction: float  # share of observed pixels flagged cloud/shadow, 0-1
    aci_code: int
    synthetic: bool = False
    #: per scene id, its DN offset as the metadata and the pixels gave it, and the one used
    dn_offsets: dict[str, dict] = field(default_factory=dict)

    @property
    def nodata_fraction(self) -> float:
        """Share of pixels without any clear observation."""
        return float((self.valid == 0).mean())

    @property
    def negative_fraction(self) -> float:
        """Share of the reflectance values (all bands, pixels with data) below 0."""
        return _share(self.reflectance, lambda v: v < 0)

    @property
    def above_one_fraction(self) -> float:
        """Share of the reflectance values (all bands, pixels with data) above 1."""
        return _share(self.reflectance, lambda v: v > 1)


def _share(values: np.ndarray, test) -> float:
    finite = values[np.isfinite(values)]
    return float(test(finite).mean()) if finite.size else 0.0
