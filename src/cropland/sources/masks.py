"""Turning a scene's quality layers into clear-pixel masks, and DN into reflectance."""

from __future__ import annotations

import numpy as np

from cropland.core.bands import REFLECTANCE_SCALE

#: Level-2A scene classification: 0 no data, 1 saturated/defective, 3 cloud shadow,
#: 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus.
SCL_NOT_CLEAR: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
SCL_CLOUD: tuple[int, ...] = (3, 8, 9, 10)
#: Level-1C QA60 bits: 10 opaque cloud, 11 cirrus (both tested, unlike the original script).
QA60_BITS: tuple[int, ...] = (10, 11)


def scl_masks(scl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clear, cloud) masks from an SCL layer (:data:`SCL_NOT_CLEAR`, :data:`SCL_CLOUD`)."""
    return ~np.isin(scl, SCL_NOT_CLEAR), np.isin(scl, SCL_CLOUD)


def qa60_masks(qa60: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clear, cloud) masks from a QA60 bit mask: cloud if *any* of :data:`QA60_BITS` is set."""
    flag = (qa60.astype(np.int64) & sum(1 << bit for bit in QA60_BITS)) != 0
    return ~flag, flag


def classi_to_qa60(classi: np.ndarray) -> np.ndarray:
    """QA60 bits from MSK_CLASSI_B00 ``(bands, H, W)``, the cloud mask of products of baseline
    04.00 on: band 1 (opaque clouds) sets bit 10, band 2 (cirrus) bit 11; band 3 (snow) is
    left out, as QA60 has no snow bit."""
    return (classi[0] != 0) * (1 << 10) + (classi[1] != 0) * (1 << 11)


def to_reflectance(dn: np.ndarray, offset: float = 0.0, nodata: float | None = 0) -> np.ndarray:
    """Reflectance ``(DN + offset) / 10000`` as float32, NaN where DN equals ``nodata``.

    ``offset`` is the scene's BOA_ADD_OFFSET / RADIO_ADD_OFFSET (-1000 from processing
    baseline 04.00 on, 0 before): applied here, and only here.
    """
    out = (dn.astype(np.float32) + np.float32(offset)) / np.float32(REFLECTANCE_SCALE)
    if nodata is not None:
        out[dn == nodata] = np.nan
    return out
