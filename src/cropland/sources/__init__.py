"""Sentinel-2 sources behind one interface (:class:`~cropland.sources.base.Source`)."""

from __future__ import annotations

from pydantic import ValidationError

from cropland.sources import earthengine as _earthengine  # noqa: F401  (registers "earthengine")
from cropland.sources import local as _local  # noqa: F401  (registers "local")
from cropland.sources import simulator as _simulator  # noqa: F401  (registers "simulator")
from cropland.sources import stac as _stac  # noqa: F401  (registers "stac")
from cropland.sources.base import Scene, ScenePatches, Source, register_source, source_kinds

__all__ = ["Scene", "ScenePatches", "Source", "make_source", "register_source", "source_kinds"]


def make_source(cfg) -> Source:
    """The source a :class:`~cropland.config.BuildConfig` names, with validated options.

    Options a source declares but the configuration leaves out default to the build's own
    ``classes`` and ``seed`` where the source has such fields (the simulator does).
    """
    from cropland.errors import ConfigError

    kinds = source_kinds()
    if cfg.source.kind not in kinds:
        raise ConfigError(
            f"source.kind: unknown source {cfg.source.kind!r}; use one of {', '.join(sorted(kinds))}"
        )
    cls = kinds[cfg.source.kind]
    fields = cls.Options.model_fields
    defaults = {k: v for k, v in (("classes", cfg.classes), ("seed", cfg.seed)) if k in fields}
    try:
        options = cls.Options.model_validate({**defaults, **cfg.source.options})
    except ValidationError as e:
        details = "; ".join(
            f"source.options.{'.'.join(map(str, err['loc']))}: "
            f"{err['msg'].removeprefix('Value error, ')}" for err in e.errors()
        )
        raise ConfigError(f"invalid options for source {cfg.source.kind!r}: {details}") from None
    return cls(level=cfg.source.level, options=options, resampling=cfg.resampling)
