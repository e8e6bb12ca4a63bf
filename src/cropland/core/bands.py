"""The 12 Sentinel-2 bands of the dataset (B10, cirrus, is not one of them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    """One spectral band: its name, native pixel size (m) and centre wavelength (nm)."""

    name: str
    resolution: int
    wavelength: int
    description: str


BANDS: tuple[Band, ...] = (
    Band("B1", 60, 444, "aerosols"),
    Band("B2", 10, 497, "blue"),
    Band("B3", 10, 560, "green"),
    Band("B4", 10, 665, "red"),
    Band("B5", 20, 704, "red edge 1"),
    Band("B6", 20, 740, "red edge 2"),
    Band("B7", 20, 783, "red edge 3"),
    Band("B8", 10, 835, "NIR"),
    Band("B8A", 20, 865, "narrow NIR (red edge 4)"),
    Band("B9", 60, 945, "water vapour"),
    Band("B11", 20, 1614, "SWIR 1"),
    Band("B12", 20, 2202, "SWIR 2"),
)
BAND_NAMES: tuple[str, ...] = tuple(b.name for b in BANDS)
BY_NAME: dict[str, Band] = {b.name: b for b in BANDS}
RGB_BANDS: tuple[str, str, str] = ("B4", "B3", "B2")

#: Reflectance = (DN + offset) / REFLECTANCE_SCALE; offset is -1000 from baseline 04.00 on.
REFLECTANCE_SCALE = 10_000.0


def band_index(name: str) -> int:
    """Position of a band in :data:`BAND_NAMES` (accepts ``B01`` and ``B1`` alike)."""
    key = normalise_band_name(name)
    try:
        return BAND_NAMES.index(key)
    except ValueError:
        raise KeyError(f"unknown band {name!r}; expected one of {', '.join(BAND_NAMES)}") from None


def normalise_band_name(name: str) -> str:
    """``B01`` -> ``B1``, ``b8a`` -> ``B8A``; other names are upper-cased."""
    name = name.upper()
    if name.startswith("B") and name[1:].isdigit():
        return f"B{int(name[1:])}"
    if name.startswith("B0") and name.endswith("A"):
        return "B" + name[2:]
    return name
