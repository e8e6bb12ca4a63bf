"""The samples of a built dataset, indexed by id: the only way the app reaches a file.

A sample id is the GeoTIFF's stem (``POINT_2_201909_AB_BARLEY``). Paths come from scanning
``tif/`` once; a request's id is looked up in that index and never joined into a path.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cropland.core.naming import SampleName
from cropland.dataset import DatasetFolder
from cropland.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One sample of the dataset: its name, GeoTIFF and split (None when no splits.json)."""

    name: SampleName
    path: Path
    split: str | None

    @property
    def id(self) -> str:
        """The sample id, ``POINT_2_201909_AB_BARLEY``."""
        return self.name.stem


class Catalog:
    """The samples of one dataset folder, by id, with its rendering settings."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        if not (self.root / "tif").is_dir():
            raise DatasetError(
                f"{self.root} is not a cropland dataset: it has no tif/ folder "
                "(build one with `cropland demo --out DIR`)"
            )
        folder = DatasetFolder(self.root)
        splits = folder.split_of()
        self.samples: dict[str, Sample] = {
            name.stem: Sample(name, path, splits.get(name.point_id))
            for name, path in folder.samples()
        }
        if not self.samples:
            raise DatasetError(f"{self.root}/tif holds no sample GeoTIFF; the build is empty")
        self.render = folder.render()
        self._by_point: dict[int, list[str]] = {}
        for sid, s in sorted(self.samples.items(), key=lambda kv: (kv[1].name.year, kv[1].name.month)):
            self._by_point.setdefault(s.name.point_id, []).append(sid)
        log.info("dataset %s: %d samples", self.root, len(self.samples))

    def __len__(self) -> int:
        return len(self.samples)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self.samples

    def get(self, sample_id: str) -> Sample:
        """The sample with this id; ``KeyError`` when the dataset has none."""
        return self.samples[sample_id]

    def same_point(self, sample_id: str) -> list[str]:
        """Ids of every sample of the same point, by year and month (itself included)."""
        return list(self._by_point[self.samples[sample_id].name.point_id])

    def index_rows(self) -> Iterator[tuple]:
        """One row of :data:`cropland.curate.store.SAMPLE_FIELDS` per sample, for the store's
        sample index; ``sort_key`` orders samples by point, year and month."""
        prefix = len(str(self.root)) + 1  # paths are found under the root: relative by slicing
        for sid, s in self.samples.items():
            n = s.name
            yield (sid, n.point_id * 1_000_000 + n.year * 100 + n.month, n.point_id, n.year,
                   n.month, n.province, n.label, s.split, str(s.path)[prefix:])

    @cached_property
    def version(self) -> str:
        """A digest of the samples, their splits and files: it changes when :meth:`index_rows` do."""
        digest = hashlib.sha256()
        for s in self.samples.values():
            digest.update(f"{s.path}\t{s.split}\n".encode())
        return digest.hexdigest()

    def facets(self) -> dict[str, list]:
        """The distinct classes, years, months, provinces and splits, sorted."""
        names = [s.name for s in self.samples.values()]
        return {
            "label": sorted({n.label for n in names}),
            "year": sorted({n.year for n in names}),
            "month": sorted({n.month for n in names}),
            "province": sorted({n.province for n in names}),
        }
