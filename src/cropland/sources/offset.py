"""The processing-baseline offset of a scene, checked against its pixels.

From processing baseline 04.00 (scenes from 2022-01-25 on) Sentinel-2 DN carry an offset of
+1000 (``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` = -1000). Catalogues say in their metadata
whether it is still in the pixels (:func:`~cropland.sources.items.dn_offset`), and are
sometimes wrong: Earth Search's ``sentinel-2-l2a`` has flagged scenes
``earthsearch:boa_offset_applied: false`` whose offset had already been removed. Applied
twice, the offset silently lowers every reflectance by 0.1.

The pixels tell the two cases apart where the scene has dark surfaces (vegetation in the
visible bands, water in the short-wave infrared), because reflectance is not negative:

* offset **absent** from the DN: a clear share (:data:`ABSENT_SHARE`) of the clear visible
  DN (B2, B3, B4) lies below 1000, which would be negative reflectance after -1000;
* offset **present**: no clear DN of the dark bands (B2, B3, B4, B11, B12) lies below 1000,
  and a share (:data:`PILE_SHARE`) piles up just above it, in [1000, 1100): dark surfaces
  near zero reflectance, shifted by the offset. A natural distribution has no such edge.

Anything else (few clear pixels, bright scenes) is no evidence, and the metadata stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cropland.core.bands import BAND_NAMES

#: The DN that reflectance 0 has when the offset is in the pixels.
OFFSET_DN = 1000.0
VISIBLE = tuple(BAND_NAMES.index(b) for b in ("B2", "B3", "B4"))
DARK = tuple(BAND_NAMES.index(b) for b in ("B2", "B3", "B4", "B11", "B12"))
#: Fewer clear values than this (per band) are no evidence either way.
MIN_VALUES = 1000
#: Share of clear visible DN below 1000 that shows the offset is not in the pixels.
ABSENT_SHARE = 0.05
#: Share of clear dark-band DN in [1000, 1100), with none below 1000, that shows it is.
PILE_SHARE = 0.01
#: "None below 1000": at most this share (rounding of bilinear resampling at edges).
NONE_BELOW = 1e-4


@dataclass(frozen=True)
class OffsetCheck:
    """A scene's DN offset as the metadata says, as the pixels say (None: no evidence), and
    the one used: the pixels' where they contradict the metadata."""

    metadata: float
    pixels: float | None = None

    @property
    def used(self) -> float:
        return self.metadata if self.pixels is None else self.pixels

    @property
    def overruled(self) -> bool:
        return self.pixels is not None and self.pixels != self.metadata

    def as_tag(self) -> dict[str, float | None]:
        """The provenance record of one scene (``DN_OFFSETS`` tag of a sample)."""
        return {"metadata": self.metadata, "pixels": self.pixels, "used": self.used}


def offset_from_pixels(dn: np.ndarray, clear: np.ndarray, may_carry: bool = True) -> float | None:
    """The DN offset the pixels show (0 or -1000), or None without clear evidence.

    Args:
        dn: float32 ``(n, 12, H, W)`` DN as stored (before any offset), NaN where no data.
        clear: bool ``(n, H, W)``, the pixels to look at (clear of clouds and shadows).
        may_carry: whether the scene can carry the offset at all (baseline 04.00 or later,
            or unknown); if not, the pixels can only say it is absent.
    """
    def values(bands: tuple[int, ...]) -> np.ndarray:
        picked = np.moveaxis(dn[:, list(bands)], 1, 0)[:, clear]  # (bands, clear pixels)
        return picked[np.isfinite(picked) & (picked > 0)]

    visible = values(VISIBLE)
    if visible.size < MIN_VALUES * len(VISIBLE):
        return None
    if np.mean(visible < OFFSET_DN) >= ABSENT_SHARE:
        return 0.0
    dark = values(DARK)
    if may_carry and np.mean(dark < OFFSET_DN) <= NONE_BELOW \
            and np.mean(dark < OFFSET_DN + 100) >= PILE_SHARE:
        return -OFFSET_DN
    return None
