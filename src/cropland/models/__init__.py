"""Models by name: ``create_model("resnet50", in_channels=12, num_classes=10)``.

Static models take ``(B, C, H, W)``; temporal models take ``(B, T, C, H, W)`` plus a
``mask`` (B, T) and ``months`` (B, T). Every model returns logits ``(B, num_classes)``.
"""

from cropland.models import static, temporal  # noqa: F401  (register the models)
from cropland.models._registry import (
    UnknownModelError,
    create_model,
    get_entry,
    is_temporal,
    list_models,
    register_model,
)
from cropland.models.adapters import adapt_input_channels

__all__ = [
    "UnknownModelError",
    "adapt_input_channels",
    "create_model",
    "get_entry",
    "is_temporal",
    "list_models",
    "register_model",
]
