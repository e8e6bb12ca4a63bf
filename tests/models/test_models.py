"""Models: registry, any channel count, the channel adapter, local weights, masks."""

from __future__ import annotations

import pytest
import torch
import torchvision

from cropland.errors import CroplandError
from cropland.models import (
    UnknownModelError,
    adapt_input_channels,
    create_model,
    is_temporal,
    list_models,
)

PAPER_AND_STRONGER = {"resnet50", "densenet121", "efficientnet_b0", "lrcn", "cnn3d", "tempcnn", "temporal_transformer"}


def test_registry_lists_the_models():
    assert PAPER_AND_STRONGER <= set(list_models())
    assert set(list_models(temporal=True)) == {"lrcn", "cnn3d", "tempcnn", "temporal_transformer"}
    with pytest.raises(UnknownModelError, match="resnet50"):
        create_model("resnet5O", 3, 10)


CASES = [(n, c) for n in sorted(PAPER_AND_STRONGER - {"resnet50", "densenet121", "efficientnet_b0"} | {"small_cnn"})
         for c in (1, 18)] + [("resnet50", 12), ("densenet121", 1), ("efficientnet_b0", 4)]


@pytest.mark.parametrize(("name", "channels"), CASES)
def test_any_channel_count_gives_logits(name, channels):
    torch.manual_seed(0)
    model = create_model(name, channels, 7).eval()
    shape = (2, 3, channels, 32, 32) if is_temporal(name) else (2, channels, 32, 32)
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_adapter_keeps_the_response_to_a_constant_image():
    model = torchvision.models.resnet18(weights=None).eval()
    x3 = torch.full((1, 3, 32, 32), 0.5)
    reference = model.conv1(x3)
    adapt_input_channels(model, 12)
    assert model.conv1.in_channels == 12
    torch.testing.assert_close(model.conv1(torch.full((1, 12, 32, 32), 0.5)), reference)
    for channels in (1, 4):  # fewer channels, and a count that is not a multiple of 3
        model = torchvision.models.resnet18(weights=None).eval()
        reference = model.conv1(x3)
        adapt_input_channels(model, channels)
        torch.testing.assert_close(model.conv1(torch.full((1, channels, 32, 32), 0.5)), reference)


def test_pretrained_weights_come_from_a_local_file(tmp_path):
    source = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(source.state_dict(), path)
    model = create_model("resnet50", 6, 10, pretrained=path)
    expected = source.conv1.weight.repeat(1, 2, 1, 1) * 0.5
    torch.testing.assert_close(model.conv1.weight, expected)
    torch.testing.assert_close(model.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
    assert model.fc.out_features == 10
    with pytest.raises(CroplandError, match="not found"):
        create_model("resnet50", 3, 10, pretrained=tmp_path / "missing.pth")
    with pytest.raises(CroplandError, match="lrcn does not take pretrained"):
        create_model("lrcn", 3, 10, pretrained=path)


def test_cnn3d_is_the_papers_size_and_outputs_logits():
    model = create_model("cnn3d", 3, 10)
    assert 29_000 < sum(p.numel() for p in model.parameters()) < 33_000  # "~31 k parameters"
    assert isinstance(model.head[-1], torch.nn.Linear)  # logits for softmax cross-entropy, no sigmoid
    with torch.no_grad():
        out = model.eval()(torch.randn(4, 3, 3, 16, 16) * 5)
    assert (out < 0).any() or (out > 1).any()


@pytest.mark.parametrize("name", ["lrcn", "tempcnn", "temporal_transformer", "cnn3d"])
def test_masked_months_do_not_change_the_prediction(name):
    torch.manual_seed(0)
    model = create_model(name, 2, 4).eval()
    x = torch.randn(2, 5, 2, 16, 16)
    mask = torch.tensor([[True, True, False, True, True]] * 2)
    months = torch.tensor([[6, 7, 0, 9, 10]] * 2)
    changed = x.clone()
    changed[:, 2] = 100.0
    x[:, 2] = 0.0
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask=mask, months=months), model(changed, mask=mask, months=months))
