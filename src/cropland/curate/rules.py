"""Curation rules: when samples are (re)scored, and how a verdict and a decision combine.

No web framework here: ``cropland curate score`` and ``cropland export --curated`` use these
rules without FastAPI installed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cropland.config import CurateConfig
from cropland.curate.catalog import Catalog
from cropland.curate.quality import iter_scores
from cropland.curate.store import Store
from cropland.parallel import chunked


def fingerprint(path: Path, cfg: CurateConfig | str) -> str:
    """Identifies a sample file's version and the thresholds it was scored with (``cfg``, or
    its :func:`config_hash`)."""
    stat = path.stat()
    cfg_hash = cfg if isinstance(cfg, str) else config_hash(cfg)
    return f"{stat.st_mtime_ns}-{stat.st_size}-{cfg_hash}"


def config_hash(cfg: CurateConfig) -> str:
    """A short digest of the thresholds."""
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16]


def ensure_quality(catalog: Catalog, store: Store, cfg: CurateConfig, workers: int = 1) -> int:
    """Score the samples whose file or thresholds changed since last time; return how many.

    Samples of the same point and year are scored together (near-duplicates compare them);
    ``workers`` processes share the work. The fingerprints are compared against the store a
    block of samples at a time, so memory holds those of the samples to score only.
    """
    cfg_hash = config_hash(cfg)
    groups: set[tuple[int, int]] = set()
    for block in chunked(catalog.values(), 500):
        cached = store.fingerprints([s.id for s in block])
        groups.update((s.name.point_id, s.name.year) for s in block
                      if cached.get(s.id) != fingerprint(s.path, cfg_hash))
    todo = [(s.name, s.path) for s in catalog.values() if (s.name.point_id, s.name.year) in groups] if groups else []
    prints = {name.stem: fingerprint(path, cfg_hash) for name, path in todo}  # taken before scoring
    for batch in chunked(iter_scores(todo, cfg, workers=workers), 2000):  # an interrupted
        store.save_quality((q, prints[q.sample_id]) for q in batch)  # run keeps what it scored
    return len(todo)


def final_status(quality: dict | None, decision: dict | None) -> str:
    """accepted / review / rejected: a reviewer's decision wins over the automatic verdict."""
    if decision is not None:
        return "accepted" if decision["decision"] == "accept" else "rejected"
    return quality["status"] if quality else "review"
