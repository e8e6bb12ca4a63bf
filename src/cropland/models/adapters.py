"""Input adapter: make any network's first convolution take any number of channels."""

from __future__ import annotations

import torch
from torch import nn


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The qualified name and module of the first ``Conv2d`` of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError(f"{type(model).__name__} has no Conv2d to adapt")


def _pair(size: tuple[int, ...]) -> tuple[int, int]:
    """A ``Conv2d`` size as the pair it is (torch types it as any tuple)."""
    a, b = size
    return a, b


def adapt_input_channels(model: nn.Module, in_channels: int) -> nn.Module:
    """Replace the first convolution so that it takes ``in_channels`` channels (in place).

    Trained weights are kept in spirit, and the response to a constant input is unchanged:
    with more channels, the old kernels are repeated over the new channels in turn, each
    divided by its number of copies (RGB weights on a 12-band input: a quarter each); with
    fewer, new channel ``j`` gets the sum of the old kernels ``j, j + new, ...`` (one grey
    channel: the sum of the RGB kernels).
    """
    name, conv = first_conv(model)
    if conv.in_channels == in_channels:
        return model
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        _pair(conv.kernel_size),
        _pair(conv.stride),
        conv.padding if isinstance(conv.padding, str) else _pair(conv.padding),
        _pair(conv.dilation),
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
    )
    with torch.no_grad():
        old_index = [k % conv.in_channels for k in range(max(in_channels, conv.in_channels))]
        copies = torch.bincount(torch.tensor(old_index), minlength=conv.in_channels)
        new.weight.zero_()
        for k, i in enumerate(old_index):
            new.weight[:, k % in_channels] += conv.weight[:, i] / copies[i]
        if conv.bias is not None:
            assert new.bias is not None  # made with a bias, as conv has one
            new.bias.copy_(conv.bias)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
    return model
