"""A synthetic release of any size, written fast: the published dataset's shape, no scene simulation.

:func:`write_synthetic_release` writes a dataset folder as a build does (``docs/format.md``):
``config.yaml``, ``points.csv``, ``splits.json`` and one 19-band sample GeoTIFF per image,
through the package's own writers (:func:`cropland.export.geotiff.write_sample`,
:func:`cropland.split.make_splits`, ...), so that export, statistics, packing, curation and
training can be measured at the published size (78,536 images, the default) or ten times it::

    from cropland.synthetic import write_synthetic_release
    write_synthetic_release("big", images=785_360, patch_size=16, workers=2)

How it is faithful: the published dataset's images per point (78,536 / 6,633), years
2017-2020, months June-October, its 10 classes in equal shares (a point keeps its class
except annual crops, which rotate between years), points 1 km apart in the provinces'
farming areas, 70/15/15 splits by point. Each image is a field and its neighbour, with the
class's spectrum for the month (the simulator's end-members and phenology, without scenes,
atmosphere or compositing), texture, reflectance quantised like Sentinel-2 DN, and a few
defects (about 5 % cloudy, 2 % with a no-data strip) so quality scores vary. The files are the
real format and about the real size (64 x 64 x 19 float32, DEFLATE: ~215 KiB). Everything is
tagged ``SYNTHETIC=yes``. The same arguments give the same files; an interrupted run resumes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer
from rich.progress import Progress

from cropland.config import BuildConfig, IndicesConfig, dump_config
from cropland.core.classes import PUBLISHED_CLASSES, get_class
from cropland.core.composite import Composite
from cropland.core.grid import PatchGrid
from cropland.core.naming import SampleName
from cropland.dataset import DatasetFolder, write_splits
from cropland.errors import ConfigError
from cropland.export.geotiff import write_sample
from cropland.io import write_text_atomic
from cropland.parallel import chunked, default_workers, imap_bounded
from cropland.points.table import write_points
from cropland.sources.simulator import CLOUD, DRY, FARM_AREAS, FOREST, GREEN, PHENOLOGY, SOIL, YELLOW, Phenology
from cropland.split import make_splits

log = logging.getLogger(__name__)

PUBLISHED_IMAGES = 78_536
PUBLISHED_POINTS = 6_633
PUBLISHED_YEARS: tuple[int, ...] = (2017, 2018, 2019, 2020)
PUBLISHED_MONTHS: tuple[int, ...] = (6, 7, 8, 9, 10)
SPACING = 1_000.0  # metres between points: 640 m patches never overlap
SOURCE = {"kind": "synthetic-release"}
CLOUDY_SHARE, NODATA_SHARE = 0.05, 0.02
#: Provinces where each published class is grown (points of other classes go anywhere).
GROWN_IN: dict[str, tuple[str, ...]] = {
    "BARLEY": ("AB", "SK", "MB"), "CANOLA": ("SK", "AB", "MB"), "CORN": ("ON", "QC", "MB"),
    "MIXEDWOOD": ("NB", "NS", "QC"), "OAT": ("MB", "SK", "QC"), "ORCHARD": ("BC", "ON", "NS"),
    "PASTURE": ("AB", "ON", "QC"), "POTATO": ("PE", "NB", "MB"), "SOYBEAN": ("ON", "QC", "MB"),
    "SPRING_WHEAT": ("SK", "AB", "MB"),
}
_CHUNK = 32  # samples per task sent to a worker


@dataclass(frozen=True)
class SyntheticRelease:
    """What :func:`write_synthetic_release` wrote."""

    root: Path
    images: int
    points: int
    written: int  # GeoTIFFs written now (the others existed: a resumed run)


def write_synthetic_release(
    out: str | Path,
    images: int = PUBLISHED_IMAGES,
    *,
    years: Sequence[int] = PUBLISHED_YEARS,
    months: Sequence[int] = PUBLISHED_MONTHS,
    classes: Sequence[str] = PUBLISHED_CLASSES,
    patch_size: int = 64,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> SyntheticRelease:
    """Write a synthetic dataset folder of exactly ``images`` sample GeoTIFFs.

    Args:
        out: the dataset folder (created; an existing one is completed, not replaced).
        images: how many images (point-months); points are ``images / 11.84`` as published.
        years, months, classes: the dataset's years, months and class folder names.
        patch_size: pixels per side (64 as built; smaller patches make smaller files where a
            figure is about the number of files, not their pixels).
        seed: the same seed and arguments give the same files.
        workers: processes writing GeoTIFFs (default: the available cores, at most 8).
        progress: show a progress bar.
    """
    if images < 1:
        raise ConfigError(f"images must be at least 1, got {images}")
    cfg = _config(Path(out), years, months, classes, patch_size, seed)
    slots = len(cfg.years) * len(cfg.months)
    n_points = max(round(images * PUBLISHED_POINTS / PUBLISHED_IMAGES), math.ceil(images / slots))
    root = Path(cfg.output)
    points = _points(n_points, cfg)
    write_points(points, root / "points.csv")
    write_text_atomic(root / "config.yaml", dump_config(cfg))
    write_splits(make_splits(points, cfg.splits, seed), DatasetFolder(root).splits_path)

    first = points[points["year"] == cfg.years[0]]  # point_id 1..n in order
    labels = points["label"].to_numpy().reshape(len(cfg.years), n_points)
    province = first["province"].to_numpy()
    x, y = _transformer("EPSG:4326", cfg.crs).transform(first["lon"].to_numpy(), first["lat"].to_numpy())
    chosen = np.sort(np.random.default_rng([seed, 11]).choice(n_points * slots, images, replace=False))
    plan = _Plan(str(root), cfg.patch_size, cfg.resolution, cfg.crs, seed, tuple(cfg.class_names),
                 tuple(cfg.months), cfg.indices)

    def rows() -> Iterator[tuple]:
        for slot in chosen.tolist():
            p, rest = divmod(slot, slots)
            y_index, m_index = divmod(rest, len(cfg.months))
            yield (p + 1, cfg.years[y_index], cfg.months[m_index], province[p],
                   labels[y_index, p], float(x[p]), float(y[p]))

    written = 0
    tasks = ((plan, chunk) for chunk in chunked(rows(), _CHUNK))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("writing synthetic GeoTIFFs", total=images)
        for n_new, n_rows in imap_bounded(_write_chunk, tasks, workers or default_workers()):
            written += n_new
            bar.advance(task, n_rows)
    log.info("synthetic release %s: %d images of %d points (%d written now)",
             root, images, n_points, written)
    return SyntheticRelease(root, images, n_points, written)


def _config(out: Path, years: Sequence[int], months: Sequence[int], classes: Sequence[str],
            patch_size: int, seed: int) -> BuildConfig:
    return BuildConfig.model_validate({
        "name": "synthetic release", "years": list(years), "months": list(months),
        "classes": list(classes), "points": {"path": "points.csv"}, "patch_size": patch_size,
        "source": {"kind": SOURCE["kind"]}, "output": str(out.resolve()), "seed": seed,
    })


def _is_annual(name: str) -> bool:
    return not _phenology(name).perennial and name != "PASTURE"


def _points(n: int, cfg: BuildConfig) -> pd.DataFrame:
    """The points table: classes in equal shares, annual crops rotating between years."""
    rng = np.random.default_rng([cfg.seed, 7])
    classes = cfg.class_names
    home = rng.permutation(np.arange(n) % len(classes))
    annual = [i for i, c in enumerate(classes) if _is_annual(c)]
    areas = {prov: (lon, lat) for prov, lon, lat in FARM_AREAS}
    province = np.empty(n, dtype=object)
    for c, name in enumerate(classes):
        options = np.array(GROWN_IN.get(name, tuple(areas)), dtype=object)
        members = np.flatnonzero(home == c)
        province[members] = options[rng.integers(len(options), size=len(members))]
    lon, lat = _lattice(province, areas, cfg.crs)
    codes = np.array([get_class(c).code for c in classes])
    frames = []
    for year in cfg.years:
        label = home.copy()
        rotate = np.isin(home, annual) & (rng.random(n) < 0.3)
        if annual:
            label[rotate] = rng.choice(annual, int(rotate.sum()))
        frames.append(pd.DataFrame({
            "point_id": np.arange(1, n + 1), "year": year, "lon": lon, "lat": lat,
            "province": province.astype(str), "aci_code": codes[label],
            "label": np.array(classes)[label],
        }))
    return pd.concat(frames, ignore_index=True)


def _lattice(province: np.ndarray, areas: dict[str, tuple[float, float]], crs: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of each point: a square lattice of SPACING around its area."""
    x, y = np.empty(len(province)), np.empty(len(province))
    for prov in np.unique(province):
        members = np.flatnonzero(province == prov)
        side = math.ceil(math.sqrt(len(members)))
        x0, y0 = _transformer("EPSG:4326", crs).transform(*areas[prov])
        k = np.arange(len(members))
        x[members] = x0 + (k % side - side / 2) * SPACING
        y[members] = y0 + (k // side - side / 2) * SPACING
    lon, lat = _transformer(crs, "EPSG:4326").transform(x, y)
    return np.asarray(lon), np.asarray(lat)


@cache
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


@dataclass(frozen=True)
class _Plan:
    """What a worker needs to write samples."""

    root: str
    size: int
    resolution: float
    crs: str
    seed: int
    classes: tuple[str, ...]
    months: tuple[int, ...]
    indices: IndicesConfig


def _write_chunk(task: tuple[_Plan, list[tuple]]) -> tuple[int, int]:
    """Write the missing GeoTIFFs of a chunk of samples; return (written, samples)."""
    plan, rows = task
    folder, written = DatasetFolder(plan.root), 0
    for pid, year, month, province, label, x, y in rows:
        name = SampleName(pid, year, month, province, label)
        path = folder.tif_path(name)
        if path.exists():
            continue
        grid = PatchGrid(plan.crs, float(x), float(y), plan.size, plan.resolution)
        write_sample(_composite(plan, name, grid), path, plan.indices, SOURCE)
        written += 1
    return written, len(rows)


def _composite(plan: _Plan, name: SampleName, grid: PatchGrid) -> Composite:
    """One image: the class's field beside a neighbouring field, textured, maybe defective."""
    rng = np.random.default_rng([plan.seed, name.point_id, name.year, name.month])
    size = plan.size
    spectra = _spectra(plan.classes, plan.months)
    month = plan.months.index(name.month)
    own = spectra[plan.classes.index(name.label), month]
    other = spectra[rng.integers(len(plan.classes)), month]
    yy, xx = _coordinates(size)
    angle = rng.uniform(0, 2 * np.pi)
    neighbour = np.cos(angle) * xx + np.sin(angle) * yy > rng.uniform(0.3, 1.2)
    base = np.where(neighbour, other[:, None, None], own[:, None, None]).astype(np.float32)
    slope = rng.normal(0, 0.04, 2).astype(np.float32)
    texture = 1 + slope[0] * xx + slope[1] * yy
    noise = 1 + np.float32(0.03) * rng.standard_normal((12, size, size), dtype=np.float32)
    reflectance = base * texture * noise
    valid = np.full((size, size), rng.integers(3, 9), np.uint16)
    cloud_fraction = float(rng.uniform(0, 0.01))
    defect = rng.random()
    if defect < CLOUDY_SHARE:
        cx, cy, r = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.2, 0.8)
        cloud = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        reflectance[:, cloud] = CLOUD[:, None].astype(np.float32)
        cloud_fraction = float(cloud.mean())
    elif defect < CLOUDY_SHARE + NODATA_SHARE:
        rows = slice(int(rng.integers(size // 2, size)), None)
        reflectance[:, rows] = np.nan
        valid[rows] = 0
    reflectance = np.round(reflectance * 10_000) / np.float32(10_000)  # DN / 10000
    scenes = [f"SYNTHETIC_{name.province}_{name.year}{name.month:02d}_{k}"
              for k in range(int(rng.integers(3, 8)))]
    return Composite(name, grid, reflectance.astype(np.float32), valid, scenes, cloud_fraction,
                     get_class(name.label).code, synthetic=True)


@cache
def _coordinates(size: int) -> np.ndarray:
    """Pixel-centre coordinates ``(2, size, size)`` (y, x) from -1 to 1 (read only)."""
    coords = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
    coords.flags.writeable = False
    return coords


def _phenology(name: str) -> Phenology:
    if name in PHENOLOGY:
        return PHENOLOGY[name]
    code = get_class(name).code  # other classes: a cereal-like crop timed by its code
    return Phenology(158 + code % 20, 210 + code % 40, 235 + code % 45, 0.8 + code % 15 / 100)


@cache
def _spectra(classes: tuple[str, ...], months: tuple[int, ...]) -> np.ndarray:
    """Reflectance ``(classes, months, 12)`` of each class mid-month: its phenology's mix of
    the simulator's end-members (green canopy, dry canopy, canola flowers, soil, forest)."""
    out = np.empty((len(classes), len(months), 12))
    for c, name in enumerate(classes):
        p = _phenology(name)
        for m, month in enumerate(months):
            doy = date(2019, month, 15).timetuple().tm_yday
            if p.perennial == "forest":
                autumn = min(max((doy - 268) / 25, 0), 1) * 0.6
                out[c, m] = (1 - autumn) * FOREST + autumn * DRY
                continue
            green = p.peak * (_sigmoid((doy - p.start) / 8) - _sigmoid((doy - p.end) / 9))
            if p.perennial == "orchard" or p.cuts:
                green = p.peak * (0.9 if p.cuts and doy < 200 else 0.7)
            dry = max(p.peak - green, 0) * _sigmoid((doy - p.end + 8) / 6) if p.end < 366 else 0
            if doy >= p.harvest:
                green, dry = 0.05, 0.35
            flower = p.flower * math.exp(-(((doy - p.start - 32) / 12) ** 2))
            soil = max(0.0, 1 - green - dry - flower)
            out[c, m] = green * GREEN + dry * DRY + flower * YELLOW + soil * SOIL
    return out


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))
