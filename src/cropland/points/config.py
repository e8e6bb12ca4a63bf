"""Validated configuration of field-centre sampling and yearly labelling (YAML).

``cropland points sample --config FILE`` reads a :class:`SampleConfig`; relative paths
resolve against the file's folder. See ``configs/points-sample-example.yaml``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cropland.configfile import read_mapping, validate
from cropland.core.classes import PUBLISHED_CLASSES, get_class
from cropland.core.provinces import PROVINCES
from cropland.errors import UnknownClassError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _class_name(key: str | int) -> str:
    try:
        return get_class(key).name
    except UnknownClassError as e:
        raise ValueError(str(e)) from None


class EarthEngineSource(_Model):
    """Earth Engine's ``AAFC/ACI`` on a grid covering a lon/lat region."""

    region: tuple[float, float, float, float] = Field(
        description="(west, south, east, north) in degrees."
    )
    crs: str = Field("EPSG:3978", description="Projected CRS of the sampling grid.")
    resolution: float = Field(30.0, gt=0, description="Pixel size of the grid (m).")
    project: str | None = Field(None, description="Google Cloud project for ee.Initialize.")


class SampleConfig(_Model):
    """Where to sample field centres, which classes, how many and how pure."""

    year: int = Field(description="ACI year the candidates are drawn from.", ge=2009, le=2100)
    aci: list[str] = Field(
        default_factory=list,
        description="ACI rasters of that year: local GeoTIFF/COG paths or http(s) URLs.",
    )
    earthengine: EarthEngineSource | None = Field(
        None, description="Draw from Earth Engine's AAFC/ACI instead of rasters."
    )
    classes: list[str | int] = Field(
        list(PUBLISHED_CLASSES), min_length=1, description="Class names or ACI codes to sample."
    )
    quota: int = Field(100, gt=0, description="Points per class (per province if per_province).")
    quotas: dict[str | int, int] = Field(
        default_factory=dict,
        description="Per-class quotas (class name or ACI code) overriding `quota`.",
    )
    per_province: bool = Field(False, description="Apply the quota to each (class, province).")
    provinces: list[str] | None = Field(None, description="Keep only points in these provinces.")
    window_m: float = Field(640.0, gt=0, description="Side of the square window (m).")
    min_purity: float = Field(
        0.9, gt=0, le=1, description="Share of the window that must be the class."
    )
    centre_px: int = Field(
        3, ge=1, description="Side (ACI pixels, odd) of the centre block that must be uniform."
    )
    min_spacing_m: float = Field(
        910.0, ge=0, description="Minimum distance between points (m); 910 keeps 640 m "
        "patches apart whatever their orientation (the patch diagonal is 905 m).",
    )
    seed: int = Field(0, description="Seed: the same seed and rasters give the same points.")
    first_id: int = Field(1, ge=0, description="Point id of the first sampled point.")
    max_candidates: int = Field(
        200_000, gt=0, description="Candidates kept per class (a uniform random subset)."
    )
    chunk_px: int = Field(1024, ge=64, description="Pixels per side of a reading chunk.")
    output: Path = Field(Path("points.csv"), description="Points table to write (.csv/.parquet).")

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[str | int]) -> list[str]:
        return list(dict.fromkeys(_class_name(k) for k in v))

    @field_validator("quotas")
    @classmethod
    def _quotas(cls, v: dict[str | int, int]) -> dict[str, int]:
        out = {_class_name(k): n for k, n in v.items()}
        if any(n < 0 for n in out.values()):
            raise ValueError("quotas must be >= 0")
        return out

    @field_validator("provinces")
    @classmethod
    def _provinces(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        bad = [p for p in v if p not in PROVINCES]
        if bad:
            raise ValueError(f"unknown province codes {bad}; use {', '.join(PROVINCES)}")
        return list(dict.fromkeys(v))

    @field_validator("centre_px")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"centre_px must be odd (a block centred on a pixel), got {v}")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> SampleConfig:
        if bool(self.aci) == (self.earthengine is not None):
            raise ValueError("give exactly one of `aci` (rasters) or `earthengine`")
        unknown = set(self.quotas) - set(self.classes)
        if unknown:
            raise ValueError(f"quotas for classes not in `classes`: {sorted(unknown)}")
        return self

    def quota_of(self, name: str) -> int:
        """Points wanted for a class (per province when ``per_province``)."""
        return self.quotas.get(name, self.quota)

    def resolve_paths(self, base: Path) -> SampleConfig:
        """A copy whose relative paths are taken relative to ``base``."""
        out = self.model_copy(deep=True)
        out.aci = [a if "://" in a or a.startswith("/vsi") else str((base / a).resolve())
                   for a in out.aci]
        out.output = (base / out.output).resolve()
        return out


class LabelRule(_Model):
    """How a point's yearly label is derived from the ACI window around it."""

    rule: Literal["centre", "majority", "agree"] = Field(
        "centre",
        description="centre: the class at the point (as published); majority: the window's "
        "majority class; agree: the centre class only when it is also the majority.",
    )
    min_share: float = Field(
        0.5, ge=0, le=1, description="majority/agree: the majority's minimum share of the window."
    )
    window_m: float = Field(640.0, gt=0, description="Side of the window (m).")


def window_pixels(window_m: float, res: float) -> int:
    """Odd number of pixels closest to ``window_m`` (640 m at 30 m: 21; at 10 m: 65)."""
    n = max(1, round(window_m / res))
    return n if n % 2 else n + 1


def spacing_cell_pixels(min_spacing_m: float, res: float) -> int:
    """Side (pixels) of the cells in which candidates are thinned to one per class."""
    return max(1, math.ceil(min_spacing_m / res))


def load_sample_config(path: str | Path, **overrides: Any) -> SampleConfig:
    """Read a sampling configuration; ``overrides`` replace top-level fields."""
    path = Path(path)
    data = read_mapping(path, "configs/points-sample-example.yaml")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_sample_config(data, path.parent, str(path))


def parse_sample_config(
    data: dict[str, Any], base: Path = Path("."), origin: str = "config"
) -> SampleConfig:
    """Validate a mapping; errors name each field and what is wrong with it."""
    return validate(SampleConfig, data, origin).resolve_paths(base)
