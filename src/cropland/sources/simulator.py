"""A deterministic Sentinel-2 simulator: synthetic Canadian farmland, scenes and points.

Everything here is synthetic and labelled so (``Source.synthetic``). The world is a grid of
fields (``FIELD`` m squares in EPSG:3978, rows shifted against each other, separated by
hedges) whose crop changes from year
to year; each class follows its own phenology over June-October (canola flowers yellow in
July, corn peaks late, mixedwood stays green, pastures are cut, cereals are harvested).
Scenes are 1 x 1 degree tiles revisited every 5 days, rendered on demand at the native
10/20/60 m grids of their UTM zone, with clouds, cirrus, cloud shadows, no-data swath
edges, a scene cloud percentage and a Level-2A-like SCL layer (QA60 for Level-1C), encoded
as DN with the processing-baseline offset of 2022 onwards.

Cereals differ mostly by a few days of timing and fields vary in sowing date, so one date
is ambiguous where a season is not: single-date classifiers do clearly worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, lru_cache

import numpy as np
import pandas as pd
from affine import Affine
from pydantic import Field
from pyproj import Transformer
from scipy.ndimage import map_coordinates

from cropland.core.bands import BANDS
from cropland.core.classes import PUBLISHED_CLASSES, get_class
from cropland.core.grid import PatchGrid
from cropland.errors import ConfigError
from cropland.sources.base import Level, Scene, ScenePatches, Source, SourceOptions, register_source
from cropland.sources.masks import qa60_masks, scl_masks, to_reflectance

WORLD_CRS = "EPSG:3978"
FIELD = 500.0  # field pitch in metres (a 640 m patch shows one field and its neighbours)
HEDGE = 15.0  # hedge/road width at field edges
BASELINE_04_START = date(2022, 1, 25)

# Reflectance spectra of the end-members, band order B1 B2 B3 B4 B5 B6 B7 B8 B8A B9 B11 B12.
SOIL = np.array([0.10, 0.12, 0.15, 0.19, 0.22, 0.24, 0.25, 0.27, 0.28, 0.10, 0.35, 0.30])
GREEN = np.array([0.03, 0.035, 0.07, 0.03, 0.11, 0.30, 0.40, 0.45, 0.46, 0.15, 0.22, 0.10])
DRY = np.array([0.07, 0.08, 0.11, 0.14, 0.18, 0.22, 0.25, 0.27, 0.28, 0.10, 0.33, 0.25])
YELLOW = np.array([0.04, 0.05, 0.17, 0.14, 0.22, 0.33, 0.38, 0.42, 0.43, 0.14, 0.24, 0.12])
FOREST = np.array([0.02, 0.025, 0.045, 0.025, 0.08, 0.22, 0.28, 0.32, 0.33, 0.11, 0.15, 0.07])
AUTUMN = np.array([0.03, 0.04, 0.08, 0.10, 0.14, 0.22, 0.26, 0.30, 0.31, 0.11, 0.20, 0.11])
CLOUD = np.array([0.55, 0.56, 0.57, 0.58, 0.59, 0.60, 0.60, 0.61, 0.61, 0.30, 0.45, 0.35])
TOA_PATH = np.array([0.06, 0.04, 0.025, 0.015, 0.012, 0.01, 0.008, 0.006, 0.006, 0.004, 0.002, 0.001])


@dataclass(frozen=True)
class Phenology:
    """Day-of-year timing of a crop: green-up, green peak level, senescence and harvest."""

    start: float  # green-up midpoint
    end: float  # senescence midpoint
    harvest: float  # day the field turns to stubble (>= 366: never)
    peak: float = 0.9
    flower: float = 0.0  # canola: strength of the yellow flowering around start + 30
    cuts: int = 0  # pasture: number of hay cuts
    perennial: str = ""  # "forest", "orchard" or "" for annual crops


PHENOLOGY: dict[str, Phenology] = {
    "BARLEY": Phenology(160, 212, 232, 0.85),
    "OAT": Phenology(166, 222, 240, 0.85),
    "SPRING_WHEAT": Phenology(162, 218, 244, 0.88),
    "CANOLA": Phenology(166, 226, 246, 0.85, flower=0.8),
    "CORN": Phenology(180, 262, 292, 0.95),
    "SOYBEAN": Phenology(172, 248, 275, 0.92),
    "POTATO": Phenology(172, 232, 248, 0.80),
    "PASTURE": Phenology(140, 400, 999, 0.75, cuts=2),
    "MIXEDWOOD": Phenology(130, 400, 999, 0.95, perennial="forest"),
    "ORCHARD": Phenology(130, 400, 999, 0.60, perennial="orchard"),
}

#: Farming areas for synthetic points: (province, lon, lat).
FARM_AREAS: tuple[tuple[str, float, float], ...] = (
    ("SK", -106.45, 52.35), ("MB", -97.75, 49.65), ("ON", -80.55, 43.45),
    ("QC", -72.75, 45.55), ("AB", -112.65, 49.65), ("PE", -63.45, 46.35),
    ("BC", -119.45, 49.85), ("NB", -67.65, 46.85), ("NS", -64.65, 45.05),
    ("NL", -53.35, 47.45),
)


def _hash(*keys: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) from integer keys (splitmix64), vectorised and platform independent."""
    h: np.ndarray = np.asarray(np.uint64(0x9E3779B97F4A7C15))
    with np.errstate(over="ignore"):
        for k in keys:
            h = h ^ (np.asarray(k).astype(np.int64).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15))
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _phenology(name: str) -> Phenology:
    if name in PHENOLOGY:
        return PHENOLOGY[name]
    code = get_class(name).code  # other ACI classes: a cereal-like crop timed by its code
    u = float(_hash(code))
    return Phenology(158 + 20 * u, 210 + 40 * u, 235 + 45 * u, 0.8 + 0.15 * u)


class World:
    """The synthetic landscape: which crop grows in each field, each year."""

    def __init__(self, classes: Sequence[str], seed: int = 0) -> None:
        self.classes = tuple(classes)
        self.seed = seed
        self.annual = [c for c in self.classes if not _phenology(c).perennial and c != "PASTURE"]

    def field_class(self, i: np.ndarray, j: np.ndarray, year: int) -> np.ndarray:
        """Class index (into ``classes``) of fields (i, j) in ``year``; crops rotate."""
        base = (_hash(i, j, self.seed, 1) * len(self.classes)).astype(np.int64)
        if not self.annual:
            return base
        annual_idx = np.array([self.classes.index(c) for c in self.annual])
        is_annual = np.isin(base, annual_idx)
        rotate = is_annual & (_hash(i, j, self.seed, year, 2) < 0.4)
        other = annual_idx[(_hash(i, j, self.seed, year, 3) * len(annual_idx)).astype(np.int64)]
        return np.where(rotate, other, base)

    def row_shift(self, j: np.ndarray) -> np.ndarray:
        """East-west offset (m) of the field boundaries of row ``j``: rows do not line up."""
        return _hash(j, self.seed, 15) * FIELD

    def field_spectra(self, i: np.ndarray, j: np.ndarray, day: datetime) -> np.ndarray:
        """Surface reflectance ``(n, 12)`` of fields (i, j) on ``day``."""
        classes = self.field_class(i, j, day.year)
        doy = day.timetuple().tm_yday
        out = np.empty((len(i), 12))
        for k, cls in enumerate(classes):
            out[k] = self._spectrum(self.classes[cls], doy, int(i[k]), int(j[k]), day.year)
        return out

    def _spectrum(self, name: str, doy: int, i: int, j: int, year: int) -> np.ndarray:
        p = _phenology(name)
        u = _hash(i, j, self.seed, year, np.arange(4, 10))  # per-field variability
        shift = (u[0] - 0.5) * 24  # sowing date +- 12 days
        moisture = 0.85 + 0.3 * u[1]
        if p.perennial == "forest":
            autumn = np.clip((doy - 268 - 10 * u[2]) / 25, 0, 1) * 0.6
            return (1 - autumn) * FOREST + autumn * AUTUMN
        if p.perennial == "orchard":
            g = p.peak * (0.85 + 0.3 * u[2])
            return g * GREEN + (1 - g) * (0.5 * SOIL + 0.5 * DRY)
        t = doy - shift
        green = p.peak * (_sigmoid((t - p.start) / 6) - _sigmoid((t - p.end) / 7))
        for c in range(p.cuts):  # hay cuts: drop to stubble, regrow over ~3 weeks
            cut = 175 + 35 * c + 30 * u[2 + c]
            if doy >= cut:
                green *= np.clip(0.25 + (doy - cut) / 28, 0.25, 1.0)
        dry = (p.peak - green) * _sigmoid((t - p.end + 8) / 5) if p.end < 366 else 0.0
        if doy - shift >= p.harvest:
            green, dry = 0.05, 0.35
        flower = p.flower * np.exp(-(((t - p.start - 32) / 9) ** 2))
        soil = max(0.0, 1 - green - dry - flower)
        return moisture * (green * GREEN + dry * DRY + flower * YELLOW + soil * SOIL)


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


@cache
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _utm_crs(lon: float, lat: float) -> str:
    zone = int((lon + 180) // 6) + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


class SimulatorOptions(SourceOptions):
    """Options of the simulator source."""

    seed: int = Field(0, description="Seed of the world, the scenes and their clouds.")
    classes: list[str] = Field(
        list(PUBLISHED_CLASSES), description="Classes growing in the synthetic world."
    )
    revisit_days: int = Field(5, gt=0, description="Days between acquisitions of a tile.")
    clear_share: float = Field(
        0.55, ge=0, le=1, description="Share of scenes that are nearly cloud-free."
    )
    noise: float = Field(0.012, ge=0, description="Per-pixel reflectance noise (std).")


@register_source
class SimulatorSource(Source):
    """Synthetic Sentinel-2 scenes of a synthetic world (see module docstring)."""

    kind = "simulator"
    Options = SimulatorOptions
    synthetic = True
    options: SimulatorOptions

    def __init__(
        self,
        level: Level = "L2A",
        options: SimulatorOptions | None = None,
        resampling: str = "bilinear",
    ) -> None:
        super().__init__(level, options, resampling)
        self.world = World([get_class(c).name for c in self.options.classes], self.options.seed)

    # -- scenes --------------------------------------------------------------------------
    def search(self, bbox, start, end, max_cloud):  # noqa: D102 (documented in Source)
        west, south, east, north = bbox
        scenes = []
        for lon0 in range(int(np.floor(west)), int(np.floor(east)) + 1):
            for lat0 in range(int(np.floor(south)), int(np.floor(north)) + 1):
                for day in self._dates(lon0, lat0, start, end):
                    scene = self._scene(lon0, lat0, day)
                    if scene.cloud_cover < max_cloud:
                        scenes.append(scene)
        return sorted(scenes, key=lambda s: (s.datetime, s.id))

    def _dates(self, lon0: int, lat0: int, start: datetime, end: datetime) -> list[datetime]:
        step = self.options.revisit_days
        phase = int(_hash(lon0, lat0, self.options.seed, 11) * step)
        first = datetime(start.year, 1, 1, 18) + timedelta(days=phase)
        k = max(0, (start - first).days // step)
        days = []
        while (day := first + timedelta(days=k * step)) < end:
            if day >= start:
                days.append(day)
            k += 1
        return days

    def _scene(self, lon0: int, lat0: int, day: datetime) -> Scene:
        tile = f"{'W' if lon0 < 0 else 'E'}{abs(lon0):03d}{'N' if lat0 >= 0 else 'S'}{abs(lat0):02d}"
        sid = f"S2SIM_MSI{self.level}_{day:%Y%m%dT%H%M%S}_{tile}"
        clouds = self._clouds(lon0, lat0, day)
        offset = -1000.0 if day.date() >= BASELINE_04_START else 0.0
        return Scene(
            id=sid, datetime=day, cloud_cover=clouds.cover, level=self.level,
            bbox=(lon0, lat0, lon0 + 1, lat0 + 1), offset=offset,
            properties={"tile": tile, "utm": _utm_crs(lon0 + 0.5, lat0 + 0.5),
                        "processing_baseline": "05.00" if offset else "02.08", "synthetic": True},
        )

    @cache  # noqa: B019 (the source lives as long as the build)
    def _clouds(self, lon0: int, lat0: int, day: datetime) -> _Clouds:
        return _Clouds.draw(lon0, lat0, day, self.options.seed, self.options.clear_share)

    # -- pixels --------------------------------------------------------------------------
    def read(self, scene: Scene, grids: Sequence[PatchGrid]) -> ScenePatches:  # noqa: D102
        n = len(grids)
        size = grids[0].size if grids else 0
        refl = np.full((n, 12, size, size), np.nan, np.float32)
        clear = np.zeros((n, size, size), bool)
        cloud = np.zeros((n, size, size), bool)
        for k, grid in enumerate(grids):
            refl[k], clear[k], cloud[k] = self._read_one(scene, grid)
        return ScenePatches(scene, refl, clear, cloud)

    def _read_one(self, scene: Scene, grid: PatchGrid):
        window = _window(grid, scene.properties["utm"])
        layers = self.render(scene, window.bounds, window.world)
        out = np.empty((12, grid.size, grid.size), np.float32)
        for b, band in enumerate(BANDS):
            dn = layers[band.name][0]
            out[b] = window.sample(to_reflectance(dn, scene.offset), band.resolution, self.resampling)
        mask_name = "SCL" if self.level == "L2A" else "QA60"
        mask, transform = layers[mask_name]
        mask = window.sample(mask, int(transform.a), "nearest")
        clear, cloud = scl_masks(mask) if mask_name == "SCL" else qa60_masks(mask)
        return out, clear & np.isfinite(out).all(axis=0), cloud

    def render(
        self,
        scene: Scene,
        bounds: tuple[float, float, float, float],
        world: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> dict[str, tuple[np.ndarray, Affine]]:
        """DN of every band (uint16, 0 = no data) and the mask layer at native resolution.

        ``bounds`` are in the scene's UTM CRS (``scene.properties["utm"]``) and must be
        multiples of 60 m. Returns ``{band: (array, transform)}`` with ``SCL`` (20 m) for
        Level-2A or ``QA60`` (60 m) for Level-1C besides the 12 bands. ``world`` are the
        EPSG:3978 coordinates of the 10 m pixel centres, when the caller has them.
        """
        left, _, _, top = bounds
        wx, wy = world if world is not None else _world_coords(bounds, scene.properties["utm"])
        surface = self._surface(wx, wy, scene.datetime)
        tau, shadow, nodata = self._clouds(*_tile_of(scene), scene.datetime).fields(wx, wy)
        alpha = np.clip(tau, 0, 1)[..., None]
        toa = surface * np.where(shadow[..., None], 0.35, 1.0)
        toa = (1 - alpha) * toa + alpha * CLOUD
        if self.level == "L1C":
            toa = toa + TOA_PATH
        noise = (_hash(np.round(wx / 10), np.round(wy / 10), _day_key(scene), np.arange(12)[:, None, None])
                 - 0.5).transpose(1, 2, 0) * (self.options.noise * np.sqrt(12))
        dn = np.clip(np.round((toa + noise) * 10000 - scene.offset), 1, 65535).astype(np.uint16)
        dn[nodata] = 0
        layers = {}
        for b, band in enumerate(BANDS):
            f = band.resolution // 10
            layers[band.name] = (_block_mean(dn[..., b], f), Affine(band.resolution, 0, left, 0, -band.resolution, top))
        if self.level == "L2A":
            scl = _scl(tau, shadow, nodata, surface)
            layers["SCL"] = (scl[::2, ::2], Affine(20, 0, left, 0, -20, top))
        else:
            qa = np.where(tau > 0.3, 1 << 10, np.where(tau > 0.1, 1 << 11, 0)).astype(np.uint16)
            layers["QA60"] = (_block_max(qa, 6), Affine(60, 0, left, 0, -60, top))
        return layers

    def _surface(self, wx: np.ndarray, wy: np.ndarray, day: datetime) -> np.ndarray:
        j = np.floor(wy / FIELD).astype(np.int64)
        wx = wx + self.world.row_shift(j)
        i = np.floor(wx / FIELD).astype(np.int64)
        i0, j0, nj = i.min(), j.min(), int(j.max() - j.min() + 1)
        keys, inverse = np.unique((i - i0) * nj + (j - j0), return_inverse=True)
        spectra = self.world.field_spectra(keys // nj + i0, keys % nj + j0, day)
        surface = spectra[inverse.ravel()].reshape(*wx.shape, 12)
        edge = np.minimum(np.abs(wx - np.round(wx / FIELD) * FIELD), np.abs(wy - np.round(wy / FIELD) * FIELD))
        hedge = 0.5 * GREEN + 0.5 * DRY
        surface[edge < HEDGE / 2] = hedge
        texture = 1 + 0.06 * (_hash(np.round(wx / 10), np.round(wy / 10), self.options.seed, 12) - 0.5)
        return surface * texture[..., None]

    def synthetic_points(self, per_class: int, years: Sequence[int], areas: int = 4) -> pd.DataFrame:
        """A points table of field centres: ``per_class`` points of each class in ``years[0]``.

        Points are spread over the first ``areas`` farming areas of :data:`FARM_AREAS`, on
        every other field so patches do not overlap; later years carry each field's own
        (possibly rotated) crop.
        """
        to_world = _transformer("EPSG:4326", WORLD_CRS)
        to_lonlat = _transformer(WORLD_CRS, "EPSG:4326")
        first = min(years)
        wanted = {c: per_class for c in self.world.classes}
        picked: dict[tuple[int, int], str] = {}  # field -> province
        radius = 40  # fields around an area's centre
        for a in range(10 * len(self.world.classes) * per_class):
            if not any(wanted.values()):
                break
            prov, lon, lat = FARM_AREAS[a % min(areas, len(FARM_AREAS))]
            x, y = to_world.transform(lon, lat)
            u = _hash(self.options.seed, a, 13), _hash(self.options.seed, a, 14)
            i = 2 * int(x // (2 * FIELD) + (u[0] - 0.5) * radius)
            j = 2 * int(y // (2 * FIELD) + (u[1] - 0.5) * radius)
            name = self.world.classes[int(self.world.field_class(np.array([i]), np.array([j]), first)[0])]
            if wanted[name] and (i, j) not in picked:
                wanted[name] -= 1
                picked[(i, j)] = prov
        if missing := {c: n for c, n in wanted.items() if n}:
            raise ConfigError(
                f"could not place synthetic points (still wanted: {missing}); raise "
                f"points.synthetic_clusters (now {areas}) or lower points.synthetic_per_class")
        rows = []
        for pid, ((i, j), prov) in enumerate(picked.items(), start=1):
            x = (i + 0.5) * FIELD - float(self.world.row_shift(np.array(j)))
            lon, lat = to_lonlat.transform(x, (j + 0.5) * FIELD)
            for year in years:
                cls = self.world.classes[int(self.world.field_class(np.array([i]), np.array([j]), year)[0])]
                rows.append((pid, year, lon, lat, prov, get_class(cls).code))
        return pd.DataFrame(rows, columns=["point_id", "year", "lon", "lat", "province", "aci_code"])


def _tile_of(scene: Scene) -> tuple[int, int]:
    return int(scene.bbox[0]), int(scene.bbox[1])


def _day_key(scene: Scene) -> int:
    return int(scene.datetime.strftime("%Y%m%d"))


@dataclass(frozen=True)
class _Clouds:
    """Gaussian cloud blobs (world coordinates), their shadows and a no-data swath edge."""

    centres: np.ndarray  # (k, 2)
    sigma: np.ndarray  # (k,)
    amp: np.ndarray  # (k,)
    sun: tuple[float, float]  # shadow displacement (m)
    swath: tuple[float, float, float] | None  # no data where a*x + b*y > c
    cover: float

    @classmethod
    def draw(cls, lon0: int, lat0: int, day: datetime, seed: int, clear_share: float) -> _Clouds:
        rng = np.random.default_rng([seed, lon0 + 360, lat0 + 90, int(day.strftime("%Y%m%d"))])
        to_world = _transformer("EPSG:4326", WORLD_CRS)
        x0, y0 = to_world.transform(lon0 + 0.5, lat0 + 0.5)
        clear = rng.random() < clear_share
        k = int(rng.integers(1, 5)) if clear else int(rng.integers(8, 60))
        centres = np.stack([x0 + rng.uniform(-50e3, 50e3, k), y0 + rng.uniform(-60e3, 60e3, k)], 1)
        sigma = rng.uniform(150, 900, k) if clear else rng.uniform(800, 9000, k)
        amp = rng.uniform(0.3, 1.6, k)
        swath = None
        if rng.random() < 0.25:
            angle = rng.uniform(0, 2 * np.pi)
            a, b = np.cos(angle), np.sin(angle)
            swath = (a, b, a * x0 + b * y0 + rng.uniform(5e3, 40e3))
        sun = (float(rng.uniform(-900, -300)), float(rng.uniform(300, 900)))
        clouds = cls(centres, sigma, amp, sun, swath, 0.0)
        gx, gy = np.meshgrid(np.linspace(x0 - 50e3, x0 + 50e3, 80), np.linspace(y0 - 60e3, y0 + 60e3, 80))
        tau, _, nodata = clouds.fields(gx, gy)
        valid = ~nodata
        cover = 100 * float((tau[valid] > 0.1).mean()) if valid.any() else 0.0
        return cls(centres, sigma, amp, sun, swath, round(cover, 3))

    def _tau(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        tau = np.zeros(x.shape)
        for (cx, cy), s, a in zip(self.centres, self.sigma, self.amp, strict=True):
            d2 = ((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s)
            near = d2 < 12
            if near.any():
                tau[near] += a * np.exp(-d2[near])
        return tau

    def fields(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cloud optical thickness, shadow mask and no-data mask at world coordinates."""
        tau = self._tau(x, y)
        shadow = (self._tau(x - self.sun[0], y - self.sun[1]) > 0.3) & (tau <= 0.1)
        if self.swath is None:
            nodata = np.zeros(x.shape, bool)
        else:
            a, b, c = self.swath
            nodata = a * x + b * y > c
        return tau, shadow, nodata


def _scl(tau: np.ndarray, shadow: np.ndarray, nodata: np.ndarray, surface: np.ndarray) -> np.ndarray:
    nir, red = surface[..., 7], surface[..., 3]
    scl = np.where((nir - red) / (nir + red + 1e-6) > 0.3, 4, 5).astype(np.uint8)
    scl[shadow] = 3
    scl[tau > 0.1] = 10
    scl[tau > 0.3] = 8
    scl[tau > 0.6] = 9
    scl[nodata] = 0
    return scl


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return a
    h, w = a.shape[0] // f, a.shape[1] // f
    blocks = a[: h * f, : w * f].reshape(h, f, w, f)
    valid = blocks > 0
    total = np.where(valid, blocks, 0).sum(axis=(1, 3), dtype=np.float64)
    count = valid.sum(axis=(1, 3))
    out = np.zeros((h, w), np.uint16)
    np.divide(total, count, out=total, where=count > 0)
    out[count == f * f] = np.round(total[count == f * f]).astype(np.uint16)  # partial = no data
    return out


def _block_max(a: np.ndarray, f: int) -> np.ndarray:
    h, w = a.shape[0] // f, a.shape[1] // f
    return np.bitwise_or.reduce(a[: h * f, : w * f].reshape(h, f, w, f), axis=(1, 3))


def _world_coords(bounds: tuple[float, float, float, float], utm: str) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:3978 coordinates of the 10 m pixel centres of a UTM window."""
    left, bottom, right, top = bounds
    w, h = int(round((right - left) / 10)), int(round((top - bottom) / 10))
    xs, ys = np.meshgrid(left + 5 + 10 * np.arange(w), top - 5 - 10 * np.arange(h))
    return _transformer(utm, WORLD_CRS).transform(xs, ys)


@dataclass(frozen=True)
class _Window:
    """A UTM window around a patch grid, and where the grid's pixel centres fall in it."""

    bounds: tuple[float, float, float, float]
    world: tuple[np.ndarray, np.ndarray]
    x: np.ndarray  # UTM coordinates of the patch pixel centres
    y: np.ndarray

    def sample(self, band: np.ndarray, resolution: int, how: str) -> np.ndarray:
        """Resample a native-grid band at the patch pixel centres (NaN outside)."""
        left, _, _, top = self.bounds
        rows = (top - self.y) / resolution - 0.5
        cols = (self.x - left) / resolution - 0.5
        order = {"nearest": 0, "bilinear": 1, "cubic": 3}[how]
        if order == 0:
            rows, cols = np.round(rows), np.round(cols)
        return map_coordinates(band.astype(np.float32), [rows, cols], order=order,
                               mode="constant", cval=np.nan, prefilter=False)


@lru_cache(maxsize=4096)  # ~200 kB each: bounded, as a long build meets many grids
def _window(grid: PatchGrid, utm: str) -> _Window:
    left, bottom, right, top = _transformer(grid.crs, utm).transform_bounds(*grid.bounds)
    bounds = (np.floor(left / 60 - 1) * 60, np.floor(bottom / 60 - 1) * 60,
              np.ceil(right / 60 + 1) * 60, np.ceil(top / 60 + 1) * 60)
    gl, _, _, gt = grid.bounds
    centres = grid.resolution * (np.arange(grid.size) + 0.5)
    gx, gy = np.meshgrid(gl + centres, gt - centres)
    x, y = _transformer(grid.crs, utm).transform(gx, gy)
    return _Window(bounds, _world_coords(bounds, utm), x, y)
