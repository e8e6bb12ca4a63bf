"""Models register themselves by name; :func:`create_model` builds one for any channel count."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from cropland.errors import CroplandError


class UnknownModelError(CroplandError, KeyError):
    """A model name that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder, whether it takes sequences, and one line about it."""

    name: str
    build: Callable[..., nn.Module]
    temporal: bool
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, temporal: bool = False) -> Callable:
    """Decorator: register ``build(in_channels, num_classes, **kwargs) -> nn.Module`` as ``name``."""

    def wrap(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        summary = (build.__doc__ or name).strip().splitlines()[0]
        _REGISTRY[name] = ModelEntry(name, build, temporal, summary)
        return build

    return wrap


def get_entry(name: str) -> ModelEntry:
    """The registry entry of a model name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; choose one of {', '.join(list_models())}") from None


def list_models(temporal: bool | None = None) -> list[str]:
    """Registered names, optionally only the static (False) or temporal (True) ones."""
    return sorted(n for n, e in _REGISTRY.items() if temporal is None or e.temporal == temporal)


def is_temporal(name: str) -> bool:
    """True when the model takes ``(B, T, C, H, W)`` sequences and a ``(B, T)`` mask."""
    return get_entry(name).temporal


def create_model(name: str, in_channels: int, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model for ``in_channels`` inputs and ``num_classes`` logits."""
    if in_channels < 1 or num_classes < 2:
        raise CroplandError(f"a model needs >= 1 input channel and >= 2 classes, got {in_channels}, {num_classes}")
    entry = get_entry(name)
    accepted = set(inspect.signature(entry.build).parameters) - {"in_channels", "num_classes"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise CroplandError(
            f"model {name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(accepted)) or 'no options'}"
        )
    return entry.build(in_channels=in_channels, num_classes=num_classes, **kwargs)
