"""Channel names and channel selection, shared by every reader.

A GeoTIFF sample has 18 channels (the 12 bands of :data:`BAND_NAMES`, then the 6 indices of
:data:`INDEX_NAMES`; band 19, VALID, is not an input). A published PNG tree has, per image
type, three channels for ``RGB`` (``RGB_R``, ``RGB_G``, ``RGB_B``) and one for an index (its
grey value). A selection is a comma-separated list of names or groups:

========  ====================================================================
``RGB``    B4, B3, B2 from GeoTIFFs; the RGB PNG's three channels from PNGs
``bands``  the 12 spectral bands (GeoTIFF or packed GeoTIFF data only)
``all``    every channel the source has (18 for GeoTIFFs)
``NDVI``   one index (any of :data:`INDEX_NAMES`), or any band name (``B8``)
========  ====================================================================
"""

from __future__ import annotations

from cropland.core.bands import BAND_NAMES, RGB_BANDS, normalise_band_name
from cropland.core.indices import INDEX_NAMES
from cropland.errors import DatasetError

#: Channels of a GeoTIFF sample, in band order (VALID excluded).
TIF_CHANNELS: tuple[str, ...] = BAND_NAMES + INDEX_NAMES
#: Channels of the RGB PNG.
PNG_RGB_CHANNELS: tuple[str, str, str] = ("RGB_R", "RGB_G", "RGB_B")


def png_channels(image_type: str) -> tuple[str, ...]:
    """Channel names one PNG image type contributes (``RGB`` -> 3, an index -> 1)."""
    return PNG_RGB_CHANNELS if image_type == "RGB" else (image_type,)


def channel_image_type(channel: str) -> str:
    """The PNG image type that holds a PNG channel name."""
    return "RGB" if channel in PNG_RGB_CHANNELS else channel


def _expand(token: str, available: tuple[str, ...]) -> tuple[str, ...]:
    key = token.strip()
    upper = key.upper()
    if upper == "ALL":
        return available
    if upper == "BANDS":
        return BAND_NAMES
    if upper == "RGB":
        return RGB_BANDS if set(RGB_BANDS) <= set(available) else PNG_RGB_CHANNELS
    if upper in INDEX_NAMES or upper in PNG_RGB_CHANNELS:
        return (upper,)
    return (normalise_band_name(key),)


def resolve_channels(spec: str | list[str] | tuple[str, ...], available: tuple[str, ...]) -> tuple[str, ...]:
    """Turn a selection (``"RGB"``, ``"NDVI,NDWI"``, ``"bands"``, ``["B8", "B4"]``) into names.

    Raises:
        DatasetError: a channel the source does not have, with the channels it has.
    """
    tokens = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for token in tokens:
        names.extend(_expand(token, available))
    if not names:
        raise DatasetError("empty channel selection; use e.g. RGB, NDVI, bands or all")
    missing = [n for n in names if n not in available]
    if missing:
        raise DatasetError(
            f"channels {', '.join(missing)} are not in this data (it has {', '.join(available)});"
            " spectral bands need GeoTIFF or packed GeoTIFF data, a PNG tree only has its image types"
        )
    if len(set(names)) != len(names):
        raise DatasetError(f"channel selection {spec!r} names a channel twice")
    return tuple(names)
