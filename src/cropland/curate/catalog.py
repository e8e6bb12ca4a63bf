"""The samples of a built dataset, indexed by id: the only way the app reaches a file.

A sample id is the GeoTIFF's stem (``POINT_2_201909_AB_BARLEY``). Paths come from scanning
``tif/`` once; a request's id is looked up in that index and never joined into a path.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
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


class Catalog(Mapping[str, Sample]):
    """The samples of one dataset folder, by id, with its rendering settings.

    It holds each sample's id and relative path only (a few hundred bytes per sample); the
    :class:`Sample` of an id is made when it is looked up.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        if not (self.root / "tif").is_dir():
            raise DatasetError(
                f"{self.root} is not a cropland dataset: it has no tif/ folder "
                "(build one with `cropland demo --out DIR`)"
            )
        folder = DatasetFolder(self.root)
        self._split_of = folder.split_of()
        prefix = len(str(self.root)) + 1  # paths are found under the root: relative by slicing
        self._paths = {name.stem: str(path)[prefix:] for name, path in folder.samples()}
        if not self._paths:
            raise DatasetError(f"{self.root}/tif holds no sample GeoTIFF; the build is empty")
        self.render = folder.render()
        log.info("dataset %s: %d samples", self.root, len(self._paths))

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._paths

    def __getitem__(self, sample_id: str) -> Sample:
        """The sample with this id; ``KeyError`` when the dataset has none."""
        relative = self._paths[sample_id]
        name, _ = SampleName.parse(relative)
        return Sample(name, self.root / relative, self._split_of.get(name.point_id))

    def index_rows(self) -> Iterator[tuple]:
        """One row of :data:`cropland.curate.store.SAMPLE_FIELDS` per sample, for the store's
        sample index; ``sort_key`` orders samples by point, year and month."""
        for sid, relative in self._paths.items():
            n, _ = SampleName.parse(relative)
            yield (sid, n.point_id * 1_000_000 + n.year * 100 + n.month, n.point_id, n.year,
                   n.month, n.province, n.label, self._split_of.get(n.point_id), relative)

    @cached_property
    def version(self) -> str:
        """A digest of the samples' files and the points' splits: it changes when
        :meth:`index_rows` do (and not when the dataset folder moves)."""
        digest = hashlib.sha256()
        for relative in self._paths.values():
            digest.update(f"{relative}\n".encode())
        digest.update(json.dumps(self._split_of, sort_keys=True).encode())
        return digest.hexdigest()
