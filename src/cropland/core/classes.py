"""Crop classes: the 10 of the published dataset and any other AAFC Annual Crop Inventory code.

The legend (``aci_legend.csv``: code, English and French labels, colour) is package data
written from the public ACI legend. A class is named by its folder name, the upper-cased
ACI label (``SPRING_WHEAT``), or by its ACI code; both are accepted everywhere.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from cropland.errors import UnknownClassError


@dataclass(frozen=True)
class CropClass:
    """An ACI class: ``name`` is the folder name used in file names and release trees."""

    code: int
    name: str
    label: str
    label_fr: str
    color: tuple[int, int, int]


#: The 10 classes of the published four-year dataset, alphabetical as in the release.
PUBLISHED_CLASSES: tuple[str, ...] = (
    "BARLEY", "CANOLA", "CORN", "MIXEDWOOD", "OAT",
    "ORCHARD", "PASTURE", "POTATO", "SOYBEAN", "SPRING_WHEAT",
)


@cache
def legend() -> dict[int, CropClass]:
    """All ACI classes keyed by code."""
    text = resources.files("cropland.core").joinpath("aci_legend.csv").read_text("utf-8")
    out = {}
    for row in csv.DictReader(text.splitlines()):
        code = int(row["code"])
        out[code] = CropClass(
            code=code,
            name=row["label"].upper().replace("/", "_").replace(" ", "_"),
            label=row["label"],
            label_fr=row["label_fr"],
            color=(int(row["red"]), int(row["green"]), int(row["blue"])),
        )
    return out


@cache
def _by_name() -> dict[str, CropClass]:
    return {c.name: c for c in legend().values()}


def get_class(key: str | int) -> CropClass:
    """Look a class up by folder name (case-insensitive), label or ACI code."""
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        code = int(key)
        if code in legend():
            return legend()[code]
        raise UnknownClassError(
            f"unknown ACI code {code}; see `cropland classes` for the {len(legend())} codes"
        )
    name = str(key).strip().upper().replace(" ", "_").replace("/", "_")
    if name in _by_name():
        return _by_name()[name]
    raise UnknownClassError(
        f"unknown crop class {key!r}; use an ACI code or one of the names listed by "
        f"`cropland classes` (published classes: {', '.join(PUBLISHED_CLASSES)})"
    )
