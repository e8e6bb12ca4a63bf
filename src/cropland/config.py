"""The validated build configuration (YAML). Relative paths resolve against the file's folder.

Every field is documented below; ``cropland config-schema`` prints them as JSON Schema.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cropland.configfile import read_mapping, validate
from cropland.core.classes import PUBLISHED_CLASSES, get_class
from cropland.core.indices import NdwiFormula, Variant
from cropland.errors import ConfigError, UnknownClassError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

#: Upper bounds that keep a typo from running for days (a 10 km patch, 10,000 points per class).
MAX_PATCH_SIZE = 1024
MAX_RESOLUTION = 1000.0
MAX_SYNTHETIC_PER_CLASS = 10_000


class PointsConfig(_Model):
    """Where the points come from: a points table, or synthetic points for the simulator."""

    path: Path | None = Field(None, description="Points table (CSV/Parquet, see docs/format.md).")
    synthetic_per_class: int | None = Field(
        None, gt=0, le=MAX_SYNTHETIC_PER_CLASS,
        description="Make this many synthetic points per class (simulator only).",
    )
    synthetic_clusters: int = Field(
        4, gt=0, le=10, description="Synthetic points are grouped in this many farming areas (1-10)."
    )

    @model_validator(mode="after")
    def _one_origin(self) -> PointsConfig:
        if (self.path is None) == (self.synthetic_per_class is None):
            raise ValueError("give exactly one of points.path or points.synthetic_per_class")
        return self


class SourceConfig(_Model):
    """The Sentinel-2 source and its scene/pixel filters."""

    kind: str = Field("simulator", description="simulator, local, stac or earthengine.")
    level: Literal["L1C", "L2A"] = Field("L2A", description="Sentinel-2 processing level.")
    max_scene_cloud: float = Field(
        5.0, ge=0, le=100, description="Keep scenes whose cloud percentage is below this."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the chosen source (see its documentation); "
        "a relative `path` is taken from the configuration file's folder."
    )


class IndicesConfig(_Model):
    """Vegetation-index formulas (see ``cropland.core.indices``)."""

    variant: Variant = Field("documented", description="documented, or original (GEE script).")
    ndwi: NdwiFormula = Field("gao", description="gao (B8, B11) or mcfeeters (B3, B8).")


class RenderConfig(_Model):
    """How PNGs are rendered from reflectance and indices (values are clipped, never wrapped)."""

    rgb_max: float = Field(0.3, gt=0, description="Reflectance mapped to 255 in RGB PNGs.")
    index_range: tuple[float, float] = Field(
        (-1.0, 1.0), description="Index values mapped to 0 and 255 in index PNGs."
    )

    @field_validator("index_range")
    @classmethod
    def _increasing(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"index_range must be [low, high] with low < high, got {list(value)}")
        return value


class SplitConfig(_Model):
    """Split fractions; a point is in one split for every year and image type."""

    training: float = Field(0.70, gt=0, lt=1, description="Share of points for training.")
    validation: float = Field(0.15, ge=0, lt=1, description="Share of points for validation.")
    test: float = Field(0.15, ge=0, lt=1, description="Share of points for testing.")

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.training + self.validation + self.test
        if abs(total - 1) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {total:g}")
        return self


class ExportConfig(_Model):
    """Which release artefacts to write."""

    png: bool = Field(True, description="Write the PNG tree (RGB and the six indices).")
    raw_zip: bool = Field(True, description="Write one zip of single-band GeoTIFFs per sample.")


class CurateConfig(_Model):
    """Quality thresholds of ``cropland curate``: which scores send a sample to review, and which
    reject it. Fractions are shares of the patch's pixels (0-1), reflectance in reflectance units.

    A sample is *rejected* when any ``*_reject`` rule fires, *to review* when only ``*_review``
    rules fire, and *accepted* otherwise."""

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
    negative_review: float = Field(
        0.01, ge=0, le=1, description="Review when more than this share of the reflectance values "
        "is negative (a baseline offset applied to DN that did not carry it, or dark water)."
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


class BuildConfig(_Model):
    """Everything a build needs. Defaults reproduce the published dataset's choices."""

    name: str = Field("cropland", description="Dataset name, used in the report and card.")
    years: list[int] = Field(description="Crop years to build (2015 on; the simulator also "
                             "invents years to come).", min_length=1)
    months: list[int] = Field([6, 7, 8, 9, 10], description="Months (1-12); one composite each.",
                              min_length=1)
    classes: list[str | int] = Field(
        list(PUBLISHED_CLASSES), description="Class folder names or ACI codes to keep.",
        min_length=1,
    )
    points: PointsConfig
    patch_size: int = Field(64, gt=0, le=MAX_PATCH_SIZE,
                            description="Pixels per side: 64, or 65 like the PNGs.")
    resolution: float = Field(10.0, gt=0, le=MAX_RESOLUTION,
                              description="Pixel size in CRS units (metres).")
    crs: str = Field("EPSG:3978", description="Target CRS of the patches.")
    resampling: Literal["nearest", "bilinear", "cubic"] = Field(
        "bilinear", description="Resampling of the bands onto the patch grid."
    )
    source: SourceConfig = Field(default_factory=SourceConfig)
    indices: IndicesConfig = Field(default_factory=IndicesConfig)
    render: RenderConfig = Field(default_factory=RenderConfig)
    splits: SplitConfig = Field(default_factory=SplitConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    output: Path = Field(Path("out"), description="Output folder of the dataset.")
    seed: int = Field(0, ge=0, lt=2**32,
                      description="Seed of the simulator, the splits and the sampling (0 to 2**32 - 1).")
    curate: CurateConfig | None = Field(
        None, description="Quality thresholds of `cropland curate` (defaults when absent)."
    )

    @field_validator("years")
    @classmethod
    def _years(cls, v: list[int]) -> list[int]:
        bad = [y for y in v if not 2015 <= y <= 2100]
        if bad:
            raise ValueError(f"Sentinel-2 years start in 2015; got {bad}")
        return sorted(set(v))

    @property
    def class_names(self) -> list[str]:
        """``classes`` as validated: class folder names (an ACI code in the file becomes its class's name)."""
        return [str(c) for c in self.classes]

    @property
    def future_years(self) -> list[int]:
        """Years after this one: only the simulator has (invented) imagery of them."""
        return [y for y in self.years if y > date.today().year]

    @model_validator(mode="after")
    def _years_with_imagery(self) -> BuildConfig:
        if self.future_years and self.source.kind != "simulator":
            raise ValueError(f"years: {self.future_years} are in the future, Sentinel-2 has no "
                             "imagery of them yet; remove them (only the simulator invents years)")
        return self

    @field_validator("months")
    @classmethod
    def _months(cls, v: list[int]) -> list[int]:
        bad = [m for m in v if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months must be 1-12, got {bad}")
        return sorted(set(v))

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[str | int]) -> list[str | int]:
        names = []
        for key in v:
            try:
                names.append(get_class(key).name)
            except UnknownClassError as e:
                raise ValueError(str(e)) from None
        return list(dict.fromkeys(names))

    @field_validator("crs")
    @classmethod
    def _crs(cls, v: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_user_input(v)
        except CRSError:
            raise ValueError(f"unknown CRS {v!r}; use e.g. EPSG:3978") from None
        if not crs.is_projected:
            raise ValueError(f"CRS {v!r} is not projected; patches need metres (e.g. EPSG:3978)")
        return v

    def resolve_paths(self, base: Path) -> BuildConfig:
        """Return a copy whose relative paths are taken relative to ``base``."""
        out = self.model_copy(deep=True)
        out.output = (base / out.output).resolve()
        if out.output.exists() and not out.output.is_dir():
            raise ConfigError(f"output: {out.output} is a file; give a folder for the dataset")
        path = out.source.options.get("path")
        if isinstance(path, str | Path) and "://" not in str(path):
            out.source.options["path"] = str((base / path).resolve())
        if out.points.path is not None:
            out.points.path = (base / out.points.path).resolve()
            if not out.points.path.exists():
                raise ConfigError(
                    f"points.path: {out.points.path} does not exist; fix the path in the config"
                )
        return out


def parse_config(data: dict[str, Any], base: Path = Path("."), origin: str = "config") -> BuildConfig:
    """Validate a configuration mapping; errors name each field and what is wrong with it."""
    return validate(BuildConfig, data, origin).resolve_paths(base)


def load_config(path: str | Path, **overrides: Any) -> BuildConfig:
    """Read a YAML configuration file; ``overrides`` replace top-level fields."""
    path = Path(path)
    data = read_mapping(path, "`cropland demo --show-config`")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_config(data, path.parent, str(path))


def demo_config_path() -> Path:
    """The offline demo's configuration, shipped with the package."""
    return Path(str(resources.files("cropland.configs").joinpath("demo.yaml")))


def dump_config(cfg: BuildConfig) -> str:
    """The resolved configuration as YAML, saved as a dataset folder's ``config.yaml``: its
    ``output`` is ``.``, the folder itself, so the file is the same wherever the folder is (and
    ``cropland build --config OUT/config.yaml`` resumes that folder)."""
    return yaml.safe_dump(cfg.model_dump(mode="json") | {"output": "."}, sort_keys=False)
