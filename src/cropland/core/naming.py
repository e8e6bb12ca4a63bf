"""Sample names: ``POINT_{id}_{YYYYMM}_{PROV}_{CLASS}_{TYPE}`` (TYPE optional)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cropland.core.provinces import PROVINCES
from cropland.errors import NameFormatError

#: Image types of the PNG release: RGB and the six vegetation indices.
IMAGE_TYPES: tuple[str, ...] = ("RGB", "NDVI", "NDVI45", "GNDVI", "OSAVI", "PSRI", "NDWI")

#: The one rule for point ids, from the points table to the review app: whole numbers from 0 to
#: 999,999,999 (9 digits at most, no sign).
MAX_POINT_ID = 999_999_999
POINT_ID_PATTERN = r"\d{1,9}"

_PATTERN = re.compile(
    r"^POINT_(?P<point_id>" + POINT_ID_PATTERN + r")_(?P<year>\d{4})(?P<month>\d{2})_(?P<province>[A-Z]{2})_"
    r"(?P<label>[A-Z][A-Z0-9_]*?)(?:_(?P<image_type>" + "|".join(IMAGE_TYPES) + r"))?$"
)

_LABEL = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True, order=True)
class SampleName:
    """The identity of one sample: a point in one month of one year."""

    point_id: int
    year: int
    month: int
    province: str
    label: str

    def __post_init__(self) -> None:
        if not 0 <= self.point_id <= MAX_POINT_ID:
            raise NameFormatError(f"point id {self.point_id} is outside 0-{MAX_POINT_ID:,}")
        if not 1 <= self.month <= 12:
            raise NameFormatError(f"month must be 1-12, got {self.month}")
        if self.province not in PROVINCES:
            raise NameFormatError(
                f"unknown province {self.province!r}; use one of {', '.join(PROVINCES)}"
            )
        if not _LABEL.fullmatch(self.label):
            raise NameFormatError(f"class {self.label!r} must be an upper-case folder name")

    @property
    def stem(self) -> str:
        """``POINT_2_201909_AB_BARLEY``."""
        return (
            f"POINT_{self.point_id}_{self.year:04d}{self.month:02d}_{self.province}_{self.label}"
        )

    def with_type(self, image_type: str) -> str:
        """``POINT_2_201909_AB_BARLEY_RGB``."""
        if image_type not in IMAGE_TYPES:
            raise NameFormatError(f"unknown image type {image_type!r}; use one of {IMAGE_TYPES}")
        return f"{self.stem}_{image_type}"

    @classmethod
    def parse(cls, name: str) -> tuple[SampleName, str | None]:
        """Parse a name (a file name's extension is ignored); return it and its TYPE or None."""
        stem = name.rsplit("/", 1)[-1]
        stem = re.sub(r"(\.[A-Za-z0-9]+)+$", "", stem) if "." in stem else stem
        match = _PATTERN.match(stem)
        if not match:
            raise NameFormatError(
                f"{name!r} is not a sample name: expected POINT_{{id}}_{{YYYYMM}}_{{PROV}}_"
                f"{{CLASS}}[_{{TYPE}}], e.g. POINT_2_201909_AB_BARLEY_RGB.png"
            )
        g = match.groupdict()
        sample = cls(int(g["point_id"]), int(g["year"]), int(g["month"]), g["province"], g["label"])
        return sample, g["image_type"]
