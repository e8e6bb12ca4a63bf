"""Temporal classifiers: input ``x`` (B, T, C, H, W), ``mask`` (B, T) True where a month is
present (None: all present), ``months`` (B, T) calendar months (0 where missing).

* ``lrcn``: LRCN-64 of the paper: ConvLSTM 32 (7 x 7), ConvLSTM 96 (3 x 3), dense 320 per
  month, LSTM 64, softmax classifier. The paper's per-month flatten of a 96 x H x W map is
  replaced by a 4 x 4 average pool (1,536 values) so the dense layer stays small.
* ``cnn3d``: 3D-CNN of the paper: 3 x (Conv3D 32, kernel (1, 2, 2), batch norm, ReLU),
  global average pooling, dense 512, then logits for a softmax / cross-entropy (the
  original's sigmoid output with categorical cross-entropy is a defect not repeated here).
* ``tempcnn`` and ``temporal_transformer``: a shared small CNN encodes each month, a month
  embedding is added, then 1D convolutions over time or a transformer encoder with the
  missing months masked out; a masked mean pools the sequence.
"""

from __future__ import annotations

import torch
from torch import nn

from cropland.models._registry import register_model
from cropland.models.static import SmallEncoder


def _full_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask


def masked_mean(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dimension 1 of ``(B, T, D)`` features where ``mask`` (B, T) is True."""
    weights = mask.to(features.dtype).unsqueeze(-1)
    return (features * weights).sum(1) / weights.sum(1).clamp(min=1)


class ConvLSTMCell(nn.Module):
    """A convolutional LSTM cell (Shi et al. 2015): gates from one convolution of [x, h]."""

    def __init__(self, in_channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTM(nn.Module):
    """Run a :class:`ConvLSTMCell` over time; a missing month leaves the state unchanged."""

    def __init__(self, in_channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, hidden, kernel)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _, hgt, wid = x.shape
        h = x.new_zeros(b, self.cell.hidden, hgt, wid)
        c = torch.zeros_like(h)
        outputs = []
        for step in range(t):
            h_new, c_new = self.cell(x[:, step], (h, c))
            keep = mask[:, step].view(b, 1, 1, 1)
            h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class LRCN(nn.Module):
    """LRCN-64: ConvLSTM 32 k7, ConvLSTM 96 k3, dense 320 per month, LSTM 64, classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = ConvLSTM(in_channels, 32, 7)
        self.conv2 = ConvLSTM(32, 96, 3)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(96 * 16, 320), nn.ReLU(inplace=True), nn.Dropout(0.3))
        self.lstm = nn.LSTMCell(320, 64)
        self.head = nn.Linear(64, num_classes)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, months: torch.Tensor | None = None
    ) -> torch.Tensor:
        mask = _full_mask(x, mask)
        maps = self.conv2(self.conv1(x, mask), mask)
        b, t = maps.shape[:2]
        features = self.dense(self.pool(maps.flatten(0, 1))).view(b, t, -1)
        h = features.new_zeros(b, 64)
        c = torch.zeros_like(h)
        for step in range(t):
            h_new, c_new = self.lstm(features[:, step], (h, c))
            keep = mask[:, step].view(b, 1)
            h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
        return self.head(h)


class CNN3D(nn.Module):
    """The paper's 3D-CNN with logits (softmax in the loss), ~31 k parameters for 3 channels."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin in (in_channels, 32, 32):
            layers += [nn.Conv3d(cin, 32, (1, 2, 2)), nn.BatchNorm3d(32), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(32, 512), nn.ReLU(inplace=True), nn.Linear(512, num_classes))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, months: torch.Tensor | None = None
    ) -> torch.Tensor:
        maps = self.features(x.transpose(1, 2))  # (B, 32, T, H', W')
        mask = _full_mask(x, mask)
        per_month = maps.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, 32)
        return self.head(masked_mean(per_month, mask))


class _PerDate(nn.Module):
    """Shared per-month CNN features plus a learned month embedding."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.encoder = SmallEncoder(in_channels, dim)
        self.month_embedding = nn.Embedding(13, dim)

    def forward(self, x: torch.Tensor, months: torch.Tensor | None) -> torch.Tensor:
        b, t = x.shape[:2]
        features = self.encoder(x.flatten(0, 1)).view(b, t, -1)
        if months is None:
            months = torch.arange(6, 6 + t, device=x.device).expand(b, t)
        return features + self.month_embedding(months.clamp(0, 12))


class TempCNN(nn.Module):
    """Per-month CNN features, two 1D convolutions over time, masked mean, classifier."""

    def __init__(self, in_channels: int, num_classes: int, dim: int = 128) -> None:
        super().__init__()
        self.per_date = _PerDate(in_channels, dim)
        self.temporal = nn.Sequential(
            nn.Conv1d(dim, dim, 3, padding=1), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Conv1d(dim, dim, 3, padding=1), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(dim, num_classes))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, months: torch.Tensor | None = None
    ) -> torch.Tensor:
        mask = _full_mask(x, mask)
        features = self.per_date(x, months) * mask.unsqueeze(-1)
        features = self.temporal(features.transpose(1, 2)).transpose(1, 2)
        return self.head(masked_mean(features, mask))


class TemporalTransformer(nn.Module):
    """Per-month CNN features, a 2-layer transformer encoder over months, masked mean."""

    def __init__(self, in_channels: int, num_classes: int, dim: int = 128, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.per_date = _PerDate(in_channels, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, months: torch.Tensor | None = None
    ) -> torch.Tensor:
        mask = _full_mask(x, mask)
        features = self.encoder(self.per_date(x, months), src_key_padding_mask=~mask)
        return self.head(masked_mean(features, mask))


@register_model("lrcn", temporal=True)
def lrcn(in_channels: int, num_classes: int) -> nn.Module:
    """LRCN-64 of the paper (ConvLSTM 32 k7, ConvLSTM 96 k3, dense 320, LSTM 64)."""
    return LRCN(in_channels, num_classes)


@register_model("cnn3d", temporal=True)
def cnn3d(in_channels: int, num_classes: int) -> nn.Module:
    """3D-CNN of the paper (3 x Conv3D 32 k(1,2,2) + BN, GAP, dense 512), softmax logits."""
    return CNN3D(in_channels, num_classes)


@register_model("tempcnn", temporal=True)
def tempcnn(in_channels: int, num_classes: int) -> nn.Module:
    """Per-month CNN + temporal 1D convolutions with month embeddings and a missing-month mask."""
    return TempCNN(in_channels, num_classes)


@register_model("temporal_transformer", temporal=True)
def temporal_transformer(in_channels: int, num_classes: int) -> nn.Module:
    """Per-month CNN + 2-layer transformer over months with a missing-month mask."""
    return TemporalTransformer(in_channels, num_classes)
