"""Small datasets in the documented format (docs/format.md), written with rasterio.

Each sample is a smooth synthetic field; defects are painted in on purpose so the quality
scores have known answers: ``cloud`` (a bright block), ``nodata`` (a block of NaN with
VALID 0), ``stripe`` (one brighter column), ``saturated`` (a block at reflectance 1.2),
``flat`` (a uniform patch) and ``duplicate`` (the previous month copied).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import yaml
from rasterio.transform import from_origin

from cropland.core.bands import BAND_NAMES
from cropland.core.indices import INDEX_NAMES, compute_indices
from cropland.core.naming import SampleName

SAMPLE_BANDS = (*BAND_NAMES, *INDEX_NAMES, "VALID")
#: Typical vegetation reflectance per band (B1 ... B12).
VEGETATION = np.array([0.03, 0.04, 0.07, 0.05, 0.12, 0.25, 0.30, 0.35, 0.36, 0.10, 0.20, 0.10])
SIZE = 32
CLOUD_BLOCK = (slice(0, 16), slice(0, 16))  # 256 of 1024 pixels
NODATA_BLOCK = (slice(20, 24), slice(0, 32))  # 128 of 1024 pixels
SATURATED_BLOCK = (slice(10, 20), slice(10, 20))  # 100 of 1024 pixels
STRIPE_COLUMN = 7


@dataclass(frozen=True)
class Spec:
    """One sample to write and the defect painted into it (None: a clean sample)."""

    name: SampleName
    defect: str | None = None
    cloud_tag: float = 0.0


def field_array(seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A clean field: reflectance ``(12, H, W)`` with texture and an edge, VALID ``(H, W)``."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.9, 1.1, size, dtype=np.float32)[None, :]
    edge = np.where(np.arange(size)[:, None] < size // 3, 0.85, 1.0).astype(np.float32)
    noise = rng.normal(1.0, 0.04, (12, size, size)).astype(np.float32)
    reflectance = (VEGETATION[:, None, None] * ramp * edge * noise).astype(np.float32)
    valid = rng.integers(3, 6, (size, size)).astype(np.float32)
    return reflectance, valid


def paint(defect: str | None, reflectance: np.ndarray, valid: np.ndarray) -> None:
    """Paint a defect into the arrays, in place."""
    if defect == "cloud":
        reflectance[(slice(None), *CLOUD_BLOCK)] = 0.5
    elif defect == "nodata":
        reflectance[(slice(None), *NODATA_BLOCK)] = np.nan
        valid[NODATA_BLOCK] = 0
    elif defect == "stripe":
        reflectance[:, :, STRIPE_COLUMN] += 0.12
    elif defect == "saturated":
        reflectance[(slice(1, 4), *SATURATED_BLOCK)] = 1.2
    elif defect == "negative":
        reflectance[3, :8] = -0.03  # B4 of the first 8 rows: 256 of 12 x 1024 values
    elif defect == "flat":
        reflectance[:] = VEGETATION[:, None, None]
    elif defect not in (None, "duplicate"):
        raise ValueError(f"unknown defect {defect!r}")


def write_tif(path: Path, spec: Spec, reflectance: np.ndarray, valid: np.ndarray) -> None:
    """Write a 19-band sample GeoTIFF with band descriptions and the documented tags."""
    n = spec.name
    indices = compute_indices(reflectance)
    data = np.concatenate([reflectance, indices, valid[None]]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "height": SIZE, "width": SIZE, "count": 19, "dtype": "float32",
               "nodata": float("nan"), "compress": "deflate", "predictor": 3, "crs": "EPSG:3978",
               "transform": from_origin(-1e6 + n.point_id * 1000, 1e6, 10, 10)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for band, name in enumerate(SAMPLE_BANDS, start=1):
            dst.set_band_description(band, name)
        dst.update_tags(
            POINT_ID=str(n.point_id), YEAR=str(n.year), MONTH=str(n.month), PROVINCE=n.province,
            LABEL=n.label, ACI_CODE="133", SCENES="S2A_1,S2B_2", N_SCENES="2",
            CLOUD_FRACTION=f"{spec.cloud_tag:.6g}",
            NODATA_FRACTION=f"{float((valid == 0).mean()):.6g}", SYNTHETIC="yes",
            SOURCE=json.dumps({"kind": "fake"}), INDEX_VARIANT="documented", NDWI="gao",
            CROPLAND_VERSION="0.1.0",
        )


def make_dataset(root: Path, specs: list[Spec]) -> Path:
    """Write ``tif/``, ``splits.json``, ``points.csv`` and ``config.yaml`` under ``root``."""
    previous: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for i, spec in enumerate(specs):
        n = spec.name
        if spec.defect == "duplicate":
            reflectance, valid = (a.copy() for a in previous[(n.point_id, n.year)])
        else:
            reflectance, valid = field_array(seed=i)
            paint(spec.defect, reflectance, valid)
        previous[(n.point_id, n.year)] = (reflectance, valid)
        write_tif(root / "tif" / str(n.year) / n.label / f"{n.stem}.tif", spec, reflectance, valid)
    points = sorted({(s.name.point_id, s.name.year, s.name.province, s.name.label) for s in specs})
    splits = ["training", "validation", "test"]
    assignments = {str(p): splits[p % 3] for p in sorted({p[0] for p in points})}
    (root / "splits.json").write_text(json.dumps({
        "format": "cropland-splits", "version": 1, "seed": 0,
        "fractions": {"training": 0.7, "validation": 0.15, "test": 0.15},
        "sha256": hashlib.sha256(json.dumps(assignments, separators=(",", ":")).encode()).hexdigest(),
        "assignments": assignments,
    }))
    rows = ["point_id,year,lon,lat,province,aci_code,label"]
    rows += [f"{p},{y},-113.5,53.5,{prov},133,{label}" for p, y, prov, label in points]
    (root / "points.csv").write_text("\n".join(rows) + "\n")
    config = {"name": "fake", "years": [2019], "points": {"synthetic_per_class": 1},
              "patch_size": SIZE, "render": {"rgb_max": 0.3, "index_range": [-1.0, 1.0]},
              "export": {"png": True, "raw_zip": True}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def standard_specs() -> list[Spec]:
    """12 samples over 4 points: one clean month each, plus every defect once."""
    def s(point: int, month: int, label: str = "BARLEY", prov: str = "AB", **kw) -> Spec:
        return Spec(SampleName(point, 2019, month, prov, label), **kw)

    return [
        s(1, 6), s(1, 7, defect="duplicate"), s(1, 8, defect="cloud"),
        s(2, 6, "CORN", "MB"), s(2, 7, "CORN", "MB", defect="nodata"),
        s(2, 8, "CORN", "MB", defect="stripe"),
        s(3, 6, "OAT", "SK"), s(3, 7, "OAT", "SK", defect="saturated"),
        s(3, 8, "OAT", "SK", defect="flat"),
        s(4, 6, "CORN", "ON"), s(4, 7, "CORN", "ON", cloud_tag=0.5), s(4, 9, "CORN", "ON"),
    ]
