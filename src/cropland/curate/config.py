"""Thresholds of the automatic quality check, as a validated configuration.

Read from a build configuration's ``curate:`` section or from a file of its own (the same
fields at the top level, or under ``curate:``). Every field is documented; fractions are
shares of the patch's pixels (0-1) and reflectance values are in reflectance units (0-1).

A sample is *rejected* when any ``*_reject`` rule fires, *to review* when only
``*_review`` rules fire, and *accepted* otherwise.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cropland.configfile import read_mapping, validate


class CurateConfig(BaseModel):
    """Quality thresholds: which scores send a sample to review, and which reject it."""

    model_config = ConfigDict(extra="forbid")

    cloud_review: float = Field(
        0.02, ge=0, le=1, description="Review when the cloud/shadow fraction exceeds this."
    )
    cloud_reject: float = Field(
        0.20, ge=0, le=1, description="Reject when the cloud/shadow fraction exceeds this."
    )
    cloud_brightness: float = Field(
        0.25, gt=0, description="Pixel is cloud-like when its mean B2/B3/B4 reflectance exceeds this."
    )
    cloud_max_ndvi: float = Field(
        0.25, ge=-1, le=1, description="...and its NDVI is below this (bright vegetation is not cloud)."
    )
    shadow_nir: float = Field(
        0.06, gt=0, description="Pixel is shadow-like when its B8 (NIR) reflectance is below this."
    )
    nodata_review: float = Field(
        0.0, ge=0, le=1, description="Review when the no-data fraction (VALID 0 or NaN) exceeds this."
    )
    nodata_reject: float = Field(
        0.05, ge=0, le=1, description="Reject when the no-data fraction exceeds this."
    )
    min_valid_obs: float = Field(
        1.5, ge=0, description="Review when the mean clear observations per pixel is below this."
    )
    saturation_level: float = Field(
        1.0, gt=0, description="A band value at or above this reflectance counts as saturated."
    )
    saturation_review: float = Field(
        0.001, ge=0, le=1, description="Review when the saturated-pixel fraction exceeds this."
    )
    saturation_reject: float = Field(
        0.05, ge=0, le=1, description="Reject when the saturated-pixel fraction exceeds this."
    )
    stripe_window: int = Field(
        5, ge=3, description="Rows/columns of the running median that row/column means are compared to."
    )
    stripe_floor: float = Field(
        0.005, gt=0, description="Smallest noise level (reflectance) of row/column means; avoids dividing by ~0."
    )
    stripe_review: float = Field(
        15.0, gt=0, description="Review when a row/column mean departs from its neighbours by "
        "this many noise levels. Straight roads and field edges along the grid score up to ~14 "
        "(99th percentile of the simulated demo), hence 15.",
    )
    stripe_reject: float = Field(
        60.0, gt=0, description="Reject when a row/column anomaly reaches this many noise levels."
    )
    contrast_review: float = Field(
        0.01, ge=0, description="Review when the 2-98 percentile spread of RGB brightness is below this."
    )
    duplicate_review: float = Field(
        0.01, ge=0, description="Review when the normalised RGB difference to another month of the "
        "same point and year is below this (near-duplicate composite).",
    )

    @model_validator(mode="after")
    def _review_below_reject(self) -> CurateConfig:
        for name in ("cloud", "nodata", "saturation", "stripe"):
            review, reject = getattr(self, f"{name}_review"), getattr(self, f"{name}_reject")
            if review > reject:
                raise ValueError(f"{name}_review ({review}) must not exceed {name}_reject ({reject})")
        return self


def parse_curate_config(data: dict | None, origin: str = "curate config") -> CurateConfig:
    """Validate a mapping (a ``curate:`` section); errors name the field and the problem."""
    return validate(CurateConfig, data or {}, origin)


def load_curate_config(path: str | Path | None) -> CurateConfig:
    """Read thresholds from a YAML file: its ``curate:`` section if it has one, else the file.

    ``None`` or a build configuration without a ``curate:`` section gives the defaults.
    """
    if path is None:
        return CurateConfig()
    path = Path(path)
    data = read_mapping(path, "the fields of cropland.curate.config.CurateConfig")
    if "curate" in data:
        return parse_curate_config(data["curate"], f"{path} (curate:)")
    if "years" in data or "points" in data:  # a build configuration without a curate section
        return CurateConfig()
    return parse_curate_config(data, str(path))


def curate_config_for(dataset: str | Path, path: str | Path | None = None) -> CurateConfig:
    """Thresholds from ``path`` if given, else from the dataset's ``config.yaml``, else defaults."""
    if path is None and (Path(dataset) / "config.yaml").exists():
        path = Path(dataset) / "config.yaml"
    return load_curate_config(path)
