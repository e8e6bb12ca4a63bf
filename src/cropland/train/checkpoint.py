"""Checkpoints that cannot run code: tensors and plain values only, loaded with ``weights_only``.

``torch.load`` of a pickle runs whatever the pickle says, so a ``best.pt`` downloaded from
anywhere could run code. Every checkpoint this package writes (``best.pt`` and the resume
state ``last.pt``) holds only tensors, numbers, strings, lists, tuples and dicts, and every
checkpoint is read with ``torch.load(..., weights_only=True)``, which refuses anything else.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from cropland.errors import CroplandError
from cropland.io import atomic_path


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """Write ``obj`` atomically (tensors and plain values only: see :func:`load_checkpoint`)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint's contents, refusing one that holds anything but tensors and plain values."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CroplandError(
            f"{path} is not a checkpoint cropland can load safely ({first[:200]}); it may hold "
            "code, so it was not loaded: use a checkpoint written by `cropland train`") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CroplandError(f"{path} is not a `cropland train` checkpoint (no model weights in it)")
    return state
