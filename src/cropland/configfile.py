"""Reading YAML configuration files and validating them with messages that name each field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cropland.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def read_mapping(path: str | Path, example: str) -> dict[str, Any]:
    """The mapping a YAML file holds; ``example`` names a file to model a fix on."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of fields, see {example}")
    return data


def validate(model: type[Model], data: Any, origin: str) -> Model:
    """``model.model_validate(data)``; a failure lists every wrong field and why."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in e.errors()
        ]
        raise ConfigError(f"{origin} is invalid:\n" + "\n".join(lines)) from None
