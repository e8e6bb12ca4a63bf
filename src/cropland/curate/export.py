"""The curated release: a copy of a dataset without its rejected samples.

A sample is left out when a reviewer rejected it, or when the automatic check rejected it
and no reviewer accepted it. Samples still to review are kept. The kept points keep their
split (``splits.json`` lists only them, with the same seed and fractions); the PNG tree and
raw zips are copied (and completed by :func:`cropland.export.release.export_release`), and
the statistics report and dataset card are written again for the curated content.
``curation.csv`` records, per sample, the automatic verdict and the reviewer's decision.
"""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cropland.config import CurateConfig
from cropland.core.naming import IMAGE_TYPES
from cropland.curate.catalog import Catalog, Sample
from cropland.curate.config import curate_config_for
from cropland.curate.rules import ensure_quality, final_status
from cropland.curate.store import DEFAULT_DB, Store
from cropland.dataset import (
    CONFIG_FILE,
    POINTS_FILE,
    SPLITS_FILE,
    png_path,
    raw_zip_path,
    tif_path,
)
from cropland.errors import DatasetError
from cropland.io import TEMP_SUFFIX, folder_lock

log = logging.getLogger(__name__)
CURATION_FILE = "curation.csv"


@dataclass(frozen=True)
class CuratedSummary:
    """What a curated export kept and left out."""

    output: Path
    kept: int
    rejected_by_reviewers: int
    rejected_automatically: int
    points_kept: int
    points_dropped: int


def export_curated(
    dataset: str | Path, out: str | Path, store: Store | str | Path | None = None,
    cfg: CurateConfig | None = None, workers: int | None = None,
) -> CuratedSummary:
    """Write the curated release of ``dataset`` to ``out`` (a new folder).

    Args:
        dataset: the built dataset.
        out: the folder to create; it must not exist. Written in a temporary sibling
            (``.OUT.cropland-tmp``, removed by the next run if this one is killed) and renamed
            at the end, so ``out`` is either complete or absent.
        store: the decision store (default ``DATASET/curate.sqlite``).
        cfg: quality thresholds for samples not scored yet (default: the ``curate:``
            section of the dataset's ``config.yaml``).
        workers: processes for rendering missing PNGs.
    """
    catalog = Catalog(dataset)
    out = Path(out).resolve()
    if out.exists():
        raise DatasetError(f"{out} exists; choose a new folder for the curated release")
    with folder_lock(catalog.root):  # the dataset does not change while it is copied
        return _export_curated(catalog, out, store, cfg, workers)


def _export_curated(
    catalog: Catalog, out: Path, store: Store | str | Path | None, cfg: CurateConfig | None,
    workers: int | None,
) -> CuratedSummary:
    own_store = not isinstance(store, Store)
    db = store if isinstance(store, Store) else Store(store or catalog.root / DEFAULT_DB)
    try:
        ensure_quality(catalog, db, cfg or curate_config_for(catalog.root))
        quality, decisions = db.quality(), db.decisions()
    finally:
        if own_store:
            db.close()
    status = {sid: final_status(quality.get(sid), decisions.get(sid)) for sid in catalog}
    kept = [catalog[sid] for sid, st in status.items() if st != "rejected"]
    tmp = out.parent / f".{out.name}{TEMP_SUFFIX}"
    if tmp.exists():  # left by a killed export of the same release
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        points_kept = _write_release(catalog, kept, tmp, workers)
        _write_curation_log(tmp / CURATION_FILE, catalog, quality, decisions, status)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    rejected = [sid for sid, st in status.items() if st == "rejected"]
    by_reviewers = sum(1 for sid in rejected if sid in decisions)
    all_points = {s.name.point_id for s in catalog.values()}
    summary = CuratedSummary(out, len(kept), by_reviewers, len(rejected) - by_reviewers,
                             points_kept, len(all_points) - points_kept)
    log.info("curated release: %s", summary)
    return summary


def _write_release(catalog: Catalog, kept: list[Sample], root: Path, workers: int | None) -> int:
    """Copy the kept samples' files, filter points and splits, regenerate report and card."""
    from cropland.dataset import DatasetFolder, Splits, write_splits
    from cropland.export.release import export_release

    src = catalog.root
    shutil.copy2(src / CONFIG_FILE, root / CONFIG_FILE)
    for sample in kept:
        _copy_sample_files(src, root, sample)
    point_years = {(s.name.point_id, s.name.year) for s in kept}
    points = pd.read_csv(src / POINTS_FILE)
    keep_rows = [(p, y) in point_years for p, y in zip(points["point_id"], points["year"], strict=True)]
    points[keep_rows].to_csv(root / POINTS_FILE, index=False)
    splits = DatasetFolder(src).splits()
    kept_points = {s.name.point_id for s in kept}
    curated = Splits({p: s for p, s in splits.assignments.items() if p in kept_points},
                     splits.seed, splits.fractions)
    write_splits(curated, root / SPLITS_FILE)
    export_release(root, DatasetFolder(root).config(), curated, workers=workers)
    _regenerate_report_and_card(root)
    return len(kept_points)


def _copy_sample_files(src: Path, dst: Path, sample: Sample) -> None:
    """Copy a sample's GeoTIFF, PNGs (in its split) and raw zip, where they exist."""
    name = sample.name
    paths = [tif_path(src, name), raw_zip_path(src, name)]
    if sample.split is not None:
        paths += [png_path(src, name, t, sample.split) for t in IMAGE_TYPES]
    for path in paths:
        if path.exists():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _regenerate_report_and_card(root: Path) -> None:
    """Statistics report and dataset card of the curated content."""
    from cropland.card import write_card
    from cropland.stats import scan_dataset, write_report

    samples = scan_dataset(root)
    write_report(root, samples)
    write_card(root, samples)


def _write_curation_log(
    path: Path, catalog: Catalog, quality: dict, decisions: dict, status: dict[str, str]
) -> None:
    """One row per sample of the source dataset: automatic verdict, decision, final status."""
    fields = ["sample_id", "final_status", "quality_status", "quality_reasons", "decision",
              "reviewer", "decision_reason", "decided_at"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for sid in sorted(catalog):
            q, d = quality.get(sid, {}), decisions.get(sid) or {}
            writer.writerow({
                "sample_id": sid, "final_status": status[sid],
                "quality_status": q.get("status", ""), "quality_reasons": "; ".join(q.get("reasons", [])),
                "decision": d.get("decision", ""), "reviewer": d.get("reviewer", ""),
                "decision_reason": d.get("reason", ""), "decided_at": d.get("decided_at", ""),
            })
