"""Static (one-image) classifiers: torchvision backbones and a small CNN.

Backbones start from random weights. ``pretrained=PATH`` loads ImageNet weights from a local
``state_dict`` file before the input and output layers are adapted; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from cropland.errors import CroplandError
from cropland.models._registry import register_model
from cropland.models.adapters import adapt_input_channels


def _load_local(model: nn.Module, pretrained: str | Path | None) -> None:
    if pretrained is None:
        return
    path = Path(pretrained)
    if not path.is_file():
        raise CroplandError(f"pretrained weights {path} not found; give a local state_dict file (.pth)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)


def _torchvision(arch: str, head: str, in_channels: int, num_classes: int, pretrained: str | Path | None) -> nn.Module:
    model = getattr(torchvision.models, arch)(weights=None)
    _load_local(model, pretrained)
    adapt_input_channels(model, in_channels)
    parent_name, _, attr = head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    setattr(parent, attr, nn.Linear(old.in_features, num_classes))
    return model


@register_model("resnet50")
def resnet50(in_channels: int, num_classes: int, pretrained: str | Path | None = None) -> nn.Module:
    """ResNet-50 (torchvision), from scratch or from local ImageNet weights."""
    return _torchvision("resnet50", "fc", in_channels, num_classes, pretrained)


@register_model("densenet121")
def densenet121(in_channels: int, num_classes: int, pretrained: str | Path | None = None) -> nn.Module:
    """DenseNet-121 (torchvision), from scratch or from local ImageNet weights."""
    return _torchvision("densenet121", "classifier", in_channels, num_classes, pretrained)


@register_model("efficientnet_b0")
def efficientnet_b0(in_channels: int, num_classes: int, pretrained: str | Path | None = None) -> nn.Module:
    """EfficientNet-B0 (torchvision), from scratch or from local ImageNet weights."""
    return _torchvision("efficientnet_b0", "classifier.1", in_channels, num_classes, pretrained)


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3 x 3 convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallEncoder(nn.Sequential):
    """Four conv-BN-ReLU blocks (32, 64, 128, ``dim``; three stride 2) and global average pooling."""

    def __init__(self, in_channels: int, dim: int = 128) -> None:
        super().__init__(
            conv_bn(in_channels, 32),
            conv_bn(32, 64, 2),
            conv_bn(64, 128, 2),
            conv_bn(128, dim, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dim = dim


@register_model("small_cnn")
def small_cnn(in_channels: int, num_classes: int) -> nn.Module:
    """A small 4-layer CNN (~0.4 M parameters): a quick static baseline."""
    encoder = SmallEncoder(in_channels)
    return nn.Sequential(encoder, nn.Linear(encoder.dim, num_classes))
