"""Monthly compositing: per-pixel median of the clear observations of a month."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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

    @property
    def nodata_fraction(self) -> float:
        """Share of pixels without any clear observation."""
        return float((self.valid == 0).mean())


def median_composite(
    reflectance: np.ndarray, clear: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median over scenes of the clear observations.

    Args:
        reflectance: float32 ``(scenes, bands, H, W)``.
        clear: bool ``(scenes, H, W)``, True where the observation may be used.

    Returns:
        The composite ``(bands, H, W)`` (NaN where no scene is clear) and the count of clear
        observations per pixel ``(H, W)``.
    """
    if reflectance.ndim != 4 or clear.shape != (reflectance.shape[0], *reflectance.shape[2:]):
        raise ValueError(f"shapes do not match: {reflectance.shape} and {clear.shape}")
    usable = clear & np.isfinite(reflectance).all(axis=1)
    masked = np.where(usable[:, None], reflectance, np.nan).astype(np.float32, copy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        median = np.nanmedian(masked, axis=0) if len(masked) else np.full(
            reflectance.shape[1:], np.nan, np.float32
        )
    return median.astype(np.float32), usable.sum(axis=0).astype(np.uint16)
