"""Which quality thresholds apply: a file's, else the dataset's ``curate:`` section, else defaults.

The thresholds themselves are :class:`cropland.config.CurateConfig`.
"""

from __future__ import annotations

from pathlib import Path

from cropland.config import CurateConfig
from cropland.configfile import read_mapping, validate
from cropland.dataset import DatasetFolder


def parse_curate_config(data: dict | None, origin: str = "curate config") -> CurateConfig:
    """Validate a mapping (a ``curate:`` section); errors name the field and the problem."""
    return validate(CurateConfig, data or {}, origin)


def load_curate_config(path: str | Path | None) -> CurateConfig:
    """Thresholds from a YAML file: its ``curate:`` section when it has one (a build
    configuration, say), else the file's top level; ``None`` gives the defaults."""
    if path is None:
        return CurateConfig()
    data = read_mapping(path, "the fields of cropland.config.CurateConfig")
    if "curate" in data:
        return parse_curate_config(data["curate"], f"{path} (curate:)")
    return parse_curate_config(data, str(path))


def curate_config_for(dataset: str | Path, path: str | Path | None = None) -> CurateConfig:
    """Thresholds from ``path`` if given, else the ``curate:`` section the dataset was built
    with, else the defaults."""
    if path is not None:
        return load_curate_config(path)
    folder = DatasetFolder(dataset)
    return parse_curate_config(folder.config_data.get("curate"), f"{folder.config_path} (curate:)")
