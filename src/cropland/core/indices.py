"""Vegetation indices, vectorised over any array shape.

Formulas follow the dataset's documentation (``REFERENCE.md`` section 4):

=======  =====================================  ============================================
index    documented (default)                   ``variant="original"`` (original GEE script)
=======  =====================================  ============================================
NDVI     (B8 - B4) / (B8 + B4)                  (B7 - B4) / (B7 + B4)
NDVI45   (B5 - B4) / (B5 + B4)                  same
GNDVI    (B8 - B3) / (B8 + B3)                  (B7 - B3) / (B7 + B3)
PSRI     (B4 - B2) / B6                         same
OSAVI    (B8 - B4) / (B8 + B4 + 0.16)           1.16 (B8 - B4) / (B8 + B4 + 0.61)
NDWI     Gao 1996: (B8 - B11) / (B8 + B11)      same; ``ndwi="mcfeeters"``: (B3 - B8) / (B3 + B8)
=======  =====================================  ============================================

NDWI defaults to Gao's vegetation-water index because the dataset is about crops, not open
water; McFeeters' open-water index is one option away. A zero denominator (and 0/0) gives
NaN, never an exception and never a silent 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from cropland.core.bands import BAND_NAMES

INDEX_NAMES: tuple[str, ...] = ("NDVI", "NDVI45", "GNDVI", "OSAVI", "PSRI", "NDWI")
Variant = Literal["documented", "original"]
NdwiFormula = Literal["gao", "mcfeeters"]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float32)
    den = np.asarray(den, dtype=np.float32)
    out = np.full(np.broadcast(num, den).shape, np.nan, dtype=np.float32)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _ratio(np.subtract(a, b, dtype=np.float32), np.add(a, b, dtype=np.float32))


def compute_index(
    name: str,
    bands: Mapping[str, np.ndarray],
    variant: Variant = "documented",
    ndwi: NdwiFormula = "gao",
) -> np.ndarray:
    """One index from reflectance bands given by name (``{"B4": red, "B8": nir, ...}``)."""
    b = bands
    nir = b["B7"] if variant == "original" else b["B8"]
    match name.upper():
        case "NDVI":
            return _nd(nir, b["B4"])
        case "NDVI45":
            return _nd(b["B5"], b["B4"])
        case "GNDVI":
            return _nd(nir, b["B3"])
        case "PSRI":
            return _ratio(np.subtract(b["B4"], b["B2"], dtype=np.float32), b["B6"])
        case "OSAVI":
            diff = np.subtract(b["B8"], b["B4"], dtype=np.float32)
            total = np.add(b["B8"], b["B4"], dtype=np.float32)
            if variant == "original":
                return _ratio(np.float32(1.16) * diff, total + np.float32(0.61))
            return _ratio(diff, total + np.float32(0.16))
        case "NDWI":
            return _nd(b["B3"], b["B8"]) if ndwi == "mcfeeters" else _nd(b["B8"], b["B11"])
    raise KeyError(f"unknown index {name!r}; use one of {', '.join(INDEX_NAMES)}")


def compute_indices(
    stack: np.ndarray,
    names: tuple[str, ...] = INDEX_NAMES,
    variant: Variant = "documented",
    ndwi: NdwiFormula = "gao",
) -> np.ndarray:
    """Indices from a band-first reflectance stack ordered as :data:`BAND_NAMES`."""
    if stack.shape[0] != len(BAND_NAMES):
        raise ValueError(f"expected {len(BAND_NAMES)} bands first, got shape {stack.shape}")
    bands = dict(zip(BAND_NAMES, stack, strict=True))
    return np.stack([compute_index(n, bands, variant, ndwi) for n in names])
