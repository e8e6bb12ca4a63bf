"""Monthly compositing: per-pixel median of the clear observations of a month."""

from __future__ import annotations

import warnings

import numpy as np


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
