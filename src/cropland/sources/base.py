"""The ``Source`` interface: where Sentinel-2 pixels come from.

A source does two things, and the build pipeline needs nothing else from it:

* :meth:`Source.search` lists the scenes that intersect an area in a date range and pass
  the scene cloud filter;
* :meth:`Source.read` reads one scene on many patch grids at once, so a scene shared by
  several points is opened once for all of them. It returns surface (or top-of-atmosphere)
  reflectance, already harmonised (DN offset of processing baseline 04.00 applied once),
  resampled onto each patch grid, with the scene's own masks turned into a ``clear`` mask.

Compositing, indices and export are source-agnostic. Sources register themselves by name
with :func:`register_source`, so configurations say ``source: {kind: stac, ...}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from cropland.core.grid import PatchGrid
from cropland.sources.offset import OffsetCheck

Level = Literal["L1C", "L2A"]
#: A cloud threshold no scene reaches (cloud cover is at most 100 %).
CENSUS_CLOUD = 101.0


@dataclass(frozen=True)
class Scene:
    """Metadata of one Sentinel-2 acquisition (a granule / STAC item)."""

    id: str
    datetime: datetime
    cloud_cover: float  # scene cloud percentage, 0-100
    level: Level
    bbox: tuple[float, float, float, float]  # WGS84 (west, south, east, north)
    offset: float = 0.0  # DN offset: reflectance = (DN + offset) / 10000
    properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class ScenePatches:
    """One scene resampled onto ``n`` patch grids.

    ``reflectance`` is float32 ``(n, 12, H, W)`` in band order :data:`BAND_NAMES`, NaN
    where the scene has no data. ``clear`` is bool ``(n, H, W)``: True where the pixel has
    data and is neither cloud nor shadow. ``cloud`` is bool ``(n, H, W)``: True where the
    scene's mask flags cloud, cirrus or shadow (used for the cloud-fraction provenance).
    ``offset`` is the DN offset check of the read (None: ``scene.offset`` was used as is).
    """

    scene: Scene
    reflectance: np.ndarray
    clear: np.ndarray
    cloud: np.ndarray
    offset: OffsetCheck | None = None


class SourceOptions(BaseModel):
    """Options shared by every source; subclasses add their own documented fields."""

    model_config = ConfigDict(extra="forbid")


class Source(ABC):
    """A provider of Sentinel-2 scenes. Subclasses set ``kind`` and ``Options``."""

    kind: ClassVar[str]
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    #: True when the pixels are simulated; propagated to every output and the dataset card.
    synthetic: ClassVar[bool] = False

    def __init__(
        self,
        level: Level = "L2A",
        options: SourceOptions | None = None,
        resampling: str = "bilinear",
    ) -> None:
        self.level = level
        self.options = options or self.Options()
        self.resampling = resampling  # of the bands onto patch grids; masks use nearest

    @abstractmethod
    def search(
        self,
        bbox: tuple[float, float, float, float],
        start: datetime,
        end: datetime,
        max_cloud: float,
    ) -> list[Scene]:
        """Scenes intersecting ``bbox`` (WGS84) acquired in ``[start, end)`` under ``max_cloud`` %."""

    @abstractmethod
    def read(self, scene: Scene, grids: Sequence[PatchGrid]) -> ScenePatches:
        """Read ``scene`` resampled onto each grid (see :class:`ScenePatches`)."""

    def census(
        self, bbox: tuple[float, float, float, float], start: datetime, end: datetime
    ) -> list[Scene]:
        """Every scene over ``bbox`` in ``[start, end)``, whatever its cloud cover or mask
        (to say why a sample got none)."""
        return self.search(bbox, start, end, max_cloud=CENSUS_CLOUD)

    def masked(self, scene: Scene) -> bool:
        """Whether ``scene`` has the cloud mask it needs (a scene without is never read)."""
        return True

    def fingerprint(self) -> str | None:
        """A digest of what the source holds, where it can tell (local files): a rerun looks
        again at samples that ended empty when it changed. None: never looked at again."""
        return None

    def describe(self) -> dict[str, Any]:
        """Provenance written into every output: kind, level, options."""
        return {"kind": self.kind, "level": self.level, "synthetic": self.synthetic,
                **self.options.model_dump(mode="json")}


_REGISTRY: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator: make a source reachable as ``source.kind`` in configurations."""
    _REGISTRY[cls.kind] = cls
    return cls


def source_kinds() -> dict[str, type[Source]]:
    """Registered sources by kind (importing :mod:`cropland.sources` registers the built-ins)."""
    return dict(_REGISTRY)


