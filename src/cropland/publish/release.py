"""``cropland publish``: a dataset (or the original zips) as a release folder ready to upload.

::

    OUT/README.md                    Hugging Face dataset card (YAML header: licence, task, configs)
    OUT/data/static/{split}-{i:05d}-of-{n:05d}.parquet      one row per sample
    OUT/data/temporal/{split}-{i:05d}-of-{n:05d}.parquet    one row per point and year
    OUT/croissant.json               Croissant 1.1
    OUT/stac/collection.json, OUT/stac/items/POINT_{id}_{year}.json
    OUT/CITATION.cff
    OUT/SHA256SUMS                   every other file's SHA-256 (``sha256sum -c SHA256SUMS``)

Publishing the same dataset again gives byte-identical files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from cropland.card import ARXIV
from cropland.data.readers import sha256_file
from cropland.data.shards import CROISSANT, VIEWS
from cropland.errors import DatasetError
from cropland.io import write_text_atomic
from cropland.publish.card import CHECKSUMS, checksums, citation, readme
from cropland.publish.catalogue import write_catalogue
from cropland.publish.croissant import croissant
from cropland.publish.shards import DEFAULT_MAX_SHARD_MB, write_shards
from cropland.publish.source import open_source

log = logging.getLogger(__name__)


def publish(
    dataset: str | Path,
    out: str | Path,
    points: str | Path | None = None,
    max_shard_mb: int = DEFAULT_MAX_SHARD_MB,
    views: Sequence[str] = VIEWS,
    repo: str | None = None,
) -> Path:
    """Write the release of ``dataset`` (a dataset folder or the original zips) to ``out``.

    Args:
        dataset: a cropland dataset folder, or a folder (or file) of the original release's zips.
        out: the release folder; created, or a previous release of this command (rewritten).
        points: a points table giving the original release's coordinates (optional).
        max_shard_mb: the largest Parquet shard, in MiB (a split is cut into equal shards).
        views: ``static`` and/or ``temporal``.
        repo: the Hugging Face repository the release is for (named in the card and the
            Croissant ``url``).
    """
    out = Path(out)
    _check_out(Path(dataset), out)
    unknown = set(views) - set(VIEWS)
    if unknown or not views:
        raise DatasetError(f"unknown views {sorted(unknown)}; use static and/or temporal")
    source = open_source(dataset, points)
    size = source.reader.read_png(0, source.image_types[0]).shape[-1]
    out.mkdir(parents=True, exist_ok=True)
    shards = write_shards(source, out, size, max_shard_mb, views)
    _remove_stale(out, {s.path for s in shards})
    sums = {s.path: sha256_file(out / s.path) for s in shards}
    url = f"https://huggingface.co/datasets/{repo}" if repo else f"https://arxiv.org/abs/{ARXIV}"
    write_text_atomic(out / CROISSANT, json.dumps(croissant(source, shards, sums, size, url), indent=1) + "\n")
    write_catalogue(source, shards, out)
    write_text_atomic(out / "README.md", readme(source, shards, size, repo))
    write_text_atomic(out / "CITATION.cff", citation(source))
    write_text_atomic(out / CHECKSUMS, checksums(out))
    log.info("published %d samples of %s to %s (%d shards)", len(source.records), dataset, out, len(shards))
    return out


def _check_out(dataset: Path, out: Path) -> None:
    if out.resolve() == dataset.resolve() or dataset.resolve() in out.resolve().parents:
        raise DatasetError(f"{out} is inside the dataset {dataset}; publish to a folder outside it")
    if out.exists() and any(out.iterdir()) and not (out / CROISSANT).exists():
        raise DatasetError(f"{out} exists and is not a release of `cropland publish`; choose a new folder")


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Shards of an earlier publication that this one did not write."""
    for path in sorted((out / "data").rglob("*.parquet")):
        if path.relative_to(out).as_posix() not in keep:
            log.info("removing %s (not part of this release)", path)
            path.unlink()
