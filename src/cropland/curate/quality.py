"""Automatic quality scores of sample GeoTIFFs, and the verdict they lead to.

Scores per sample (fractions are shares of the patch's pixels):

- ``cloud_tag``: the ``CLOUD_FRACTION`` tag written by the build (scene-level masking);
- ``cloud_pixels`` / ``shadow_pixels``: bright, non-vegetated pixels / dark pixels left in the
  composite (simple reflectance tests, thresholds in :class:`CurateConfig`);
- ``nodata``: pixels with ``VALID == 0`` or a NaN band;
- ``valid_mean`` / ``valid_min``: clear observations per pixel (the VALID band);
- ``saturation``: pixels with a band at or above ``saturation_level``;
- ``negative`` / ``above_one``: shares of the reflectance values (12 bands, pixels with data)
  below 0 / above 1 (a baseline offset applied to DN that did not carry it shows as negative
  values; bright clouds and snow go above 1);
- ``stripe``: the largest row or column mean anomaly (against a running median of its
  neighbours), in units of the anomalies' robust noise level;
- ``contrast``: 2-98 percentile spread of RGB brightness;
- ``duplicate``: normalised RGB difference to the closest other month of the same point
  and year (0 = identical composites).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from rich.progress import Progress
from scipy.ndimage import median_filter

from cropland.config import CurateConfig
from cropland.core.bands import BAND_NAMES, RGB_BANDS
from cropland.core.naming import SampleName
from cropland.export.geotiff import SAMPLE_BANDS, read_sample
from cropland.parallel import chunked, imap_bounded

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("accepted", "review", "rejected")
_RGB = [SAMPLE_BANDS.index(b) for b in RGB_BANDS]
_STRIPE_BANDS = [SAMPLE_BANDS.index(b) for b in ("B2", "B3", "B4", "B8")]
_B8 = SAMPLE_BANDS.index("B8")
_VALID = SAMPLE_BANDS.index("VALID")
_N_REFLECTANCE = len(BAND_NAMES)


@dataclass
class SampleQuality:
    """The scores of one sample and the automatic verdict."""

    sample_id: str
    status: str
    reasons: list[str]
    metrics: dict[str, float | str | None] = field(default_factory=dict)


def pixel_masks(data: np.ndarray, cfg: CurateConfig) -> dict[str, np.ndarray]:
    """Boolean ``(H, W)`` masks ``nodata``, ``cloud``, ``shadow`` of a 19-band sample array."""
    reflectance = data[:_N_REFLECTANCE]
    valid = np.nan_to_num(data[_VALID], nan=0.0)
    nodata = (valid <= 0) | ~np.isfinite(reflectance).all(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        brightness = data[_RGB].mean(axis=0)
        red, nir = data[SAMPLE_BANDS.index("B4")], data[_B8]
        ndvi = (nir - red) / (nir + red)
        cloud = (brightness > cfg.cloud_brightness) & ~(ndvi >= cfg.cloud_max_ndvi)
        shadow = (nir < cfg.shadow_nir) & (brightness < cfg.shadow_nir)
    return {"nodata": nodata, "cloud": cloud & ~nodata, "shadow": shadow & ~nodata}


def stripe_score(data: np.ndarray, cfg: CurateConfig) -> float:
    """Largest row/column mean anomaly of B2, B3, B4 and B8, in robust noise units."""
    best = 0.0
    for band in data[_STRIPE_BANDS]:
        finite = np.isfinite(band)
        if finite.sum() < band.size // 2:
            continue
        filled = np.where(finite, band, np.median(band[finite]))
        for means in (filled.mean(axis=1), filled.mean(axis=0)):
            residual = means - median_filter(means, size=cfg.stripe_window, mode="nearest")
            noise = max(1.4826 * float(np.median(np.abs(residual))), cfg.stripe_floor)
            best = max(best, float(np.abs(residual).max()) / noise)
    return best


def rgb_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mean absolute difference of two ``(3, H, W)`` RGB arrays (NaN if no overlap)."""
    both = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    if not both.any():
        return math.nan
    x, y = a[:, both], b[:, both]
    scale = (np.abs(x).mean() + np.abs(y).mean()) / 2
    return float(np.abs(x - y).mean() / scale) if scale > 0 else 0.0


def sample_metrics(data: np.ndarray, tags: dict[str, str], cfg: CurateConfig) -> dict[str, float]:
    """Every per-sample score of a 19-band array and its tags (see the module docstring)."""
    masks = pixel_masks(data, cfg)
    valid = np.nan_to_num(data[_VALID], nan=0.0)
    reflectance = data[:_N_REFLECTANCE]
    with np.errstate(invalid="ignore"):
        saturated = (reflectance >= cfg.saturation_level).any(axis=0)
    values = reflectance[np.isfinite(reflectance)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        brightness = data[_RGB].mean(axis=0)
        finite = brightness[np.isfinite(brightness)]
    contrast = float(np.subtract(*np.percentile(finite, [98, 2]))) if finite.size else 0.0
    return {
        "cloud_tag": _float_tag(tags, "CLOUD_FRACTION"),
        "cloud_pixels": float(masks["cloud"].mean()),
        "shadow_pixels": float(masks["shadow"].mean()),
        "nodata": float(masks["nodata"].mean()),
        "valid_mean": float(valid.mean()),
        "valid_min": float(valid.min()),
        "saturation": float(saturated.mean()),
        "negative": float((values < 0).mean()) if values.size else 0.0,
        "above_one": float((values > 1).mean()) if values.size else 0.0,
        "stripe": stripe_score(data, cfg),
        "contrast": contrast,
    }


def _float_tag(tags: dict[str, str], name: str) -> float:
    try:
        value = float(tags.get(name, "nan"))
    except ValueError:
        return math.nan
    return value


def verdict(metrics: dict, cfg: CurateConfig) -> tuple[str, list[str]]:
    """``(status, reasons)`` of a sample's metrics: rejected, review or accepted."""
    cloud = np.nanmax([metrics["cloud_tag"], metrics["cloud_pixels"] + metrics["shadow_pixels"]])
    rules = [  # (name, value, review above, reject above)
        ("cloud", float(cloud), cfg.cloud_review, cfg.cloud_reject),
        ("no-data", metrics["nodata"], cfg.nodata_review, cfg.nodata_reject),
        ("saturation", metrics["saturation"], cfg.saturation_review, cfg.saturation_reject),
        ("stripes", metrics["stripe"], cfg.stripe_review, cfg.stripe_reject),
    ]
    rejected = [f"{n} {v:.3g} > {hi:g}" for n, v, _, hi in rules if v > hi]
    review = [f"{n} {v:.3g} > {lo:g}" for n, v, lo, hi in rules if lo < v <= hi]
    if metrics["valid_mean"] < cfg.min_valid_obs and metrics["nodata"] < 1:
        review.append(f"valid observations {metrics['valid_mean']:.3g} < {cfg.min_valid_obs:g}")
    if metrics["negative"] > cfg.negative_review:
        review.append(f"negative reflectance {metrics['negative']:.3g} > {cfg.negative_review:g}")
    if metrics["contrast"] < cfg.contrast_review:
        review.append(f"low contrast {metrics['contrast']:.3g} < {cfg.contrast_review:g}")
    duplicate = metrics.get("duplicate")
    if duplicate is not None and not math.isnan(duplicate) and duplicate < cfg.duplicate_review:
        review.append(f"near-duplicate of {metrics['duplicate_of']} ({duplicate:.3g})")
    if rejected:
        return "rejected", rejected + review
    return ("review", review) if review else ("accepted", [])


def score_group(
    members: Sequence[tuple[SampleName, Path]], cfg: CurateConfig
) -> list[SampleQuality]:
    """Score the months of one point and year together (near-duplicates need all of them)."""
    arrays = {s.stem: read_sample(p) for s, p in members}
    results = []
    for stem, (data, tags) in arrays.items():
        metrics: dict = sample_metrics(data, tags, cfg)
        others = [(rgb_difference(data[_RGB], d[_RGB]), o) for o, (d, _) in arrays.items() if o != stem]
        others = [(d, o) for d, o in others if not math.isnan(d)]
        closest = min(others, default=(None, None))
        metrics["duplicate"], metrics["duplicate_of"] = closest
        status, reasons = verdict(metrics, cfg)
        results.append(SampleQuality(stem, status, reasons, metrics))
    return results


def score_samples(
    samples: Iterable[tuple[SampleName, Path]], cfg: CurateConfig, progress: bool = True,
    workers: int = 1,
) -> list[SampleQuality]:
    """Score samples, grouped by point and year; returns one result per sample, in order."""
    samples = list(samples)
    results = {r.sample_id: r for r in iter_scores(samples, cfg, progress, workers)}
    return [results[sample.stem] for sample, _ in samples]


def iter_scores(
    samples: Iterable[tuple[SampleName, Path]], cfg: CurateConfig, progress: bool = True,
    workers: int = 1,
) -> Iterator[SampleQuality]:
    """Score samples, grouped by point and year; yields the results as groups are scored.

    ``workers`` > 1 scores groups in that many processes (reading the GeoTIFFs dominates); a
    few groups are in flight at a time, so memory holds results only as long as the caller does.
    """
    groups: dict[tuple[int, int], list[tuple[SampleName, Path]]] = defaultdict(list)
    for sample, path in samples:
        groups[(sample.point_id, sample.year)].append((sample, path))
    counts = dict.fromkeys(STATUSES, 0)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("quality scores", total=sum(map(len, groups.values())))
        tasks = chunked(groups.values(), 16)
        for scored in imap_bounded(partial(_score_groups, cfg=cfg), tasks, workers):
            for result in scored:
                counts[result.status] += 1
                yield result
            bar.advance(task, len(scored))
    log.info("scored %d samples: %s", sum(counts.values()), counts)


def _score_groups(groups: list[list[tuple[SampleName, Path]]], cfg: CurateConfig) -> list[SampleQuality]:
    return [result for members in groups for result in score_group(members, cfg)]
