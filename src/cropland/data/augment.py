"""Augmentation on the device: a random symmetry of the square per sample (flips, rot90).

Works on ``(B, C, H, W)`` and ``(B, T, C, H, W)`` batches; the months of one sequence get the
same transform. The eight symmetries of a square are drawn uniformly: optional transpose,
then optional horizontal and vertical flips (a rotation by 90 degrees is transpose + flip).
"""

from __future__ import annotations

import torch


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


def random_dihedral(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply one of the 8 square symmetries to each sample of ``x`` (on ``x``'s device)."""
    flags = torch.randint(0, 2, (3, x.shape[0]), device=x.device, generator=generator).bool()
    if x.shape[-1] == x.shape[-2]:
        x = _where(flags[0], x.transpose(-1, -2), x)
    x = _where(flags[1], x.flip(-1), x)
    return _where(flags[2], x.flip(-2), x)
