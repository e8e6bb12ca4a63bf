"""What a trained model expects: the one typed record of a run's data settings.

:class:`RunSpec` is resolved once when a run starts (from its configuration and the dataset)
and saved in every checkpoint as plain values (:meth:`RunSpec.to_dict`), so checkpoints load
with ``torch.load(..., weights_only=True)``. Evaluation and prediction rebuild the model, the
datasets and the input preparation from it alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from cropland.data.datasets import TemporalMode
from cropland.data.preprocess import Normalization, Preprocessing
from cropland.errors import CroplandError


@dataclass(frozen=True)
class RunSpec:
    """A run's model and data settings.

    Attributes:
        model: registered model name.
        channels: the input channels, in order.
        classes: the class list (output ``k`` is ``classes[k]``).
        months: the months a temporal item covers.
        temporal: whether the model takes sequences of months.
        temporal_mode: ``triplet`` or ``series`` (temporal models), else None.
        size: centre crop of the stored images (pixels), None to keep them.
        resize: area resize after cropping, None to keep the size.
        normalization: per-channel ``{"mean", "std"}`` of the training split, in reader units.
        source: the reader the run trained from (``PackedReader``, ...).
        render: the ``render:`` settings of the build whose PNGs it trained on (to render
            GeoTIFFs alike when predicting), or None.
    """

    model: str
    channels: tuple[str, ...]
    classes: tuple[str, ...]
    months: tuple[int, ...]
    temporal: bool
    temporal_mode: TemporalMode | None
    size: int | None
    resize: int | None
    normalization: dict[str, dict[str, float]]
    source: str = ""
    render: dict | None = None

    @property
    def preprocessing(self) -> Preprocessing:
        """Crop -> resize -> normalise, as the model was trained."""
        return Preprocessing(self.size, self.resize, Normalization.from_dict(self.normalization))

    def to_dict(self) -> dict:
        """Plain values (lists, numbers, strings), as saved in checkpoints."""
        out = asdict(self)
        for key in ("channels", "classes", "months"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        """Inverse of :meth:`to_dict` (also reads the ``meta`` of older checkpoints)."""
        names = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in data.items() if k in names}
            for key in ("channels", "classes", "months"):
                values[key] = tuple(values[key])
            return cls(**values)
        except (KeyError, TypeError) as e:
            raise CroplandError(
                f"the checkpoint's run settings are incomplete ({e}); retrain with `cropland train`"
            ) from None

    @classmethod
    def from_checkpoint(cls, state: dict) -> RunSpec:
        """The spec saved in a checkpoint's ``spec`` (or, before it existed, ``meta``)."""
        data = state.get("spec", state.get("meta"))
        if not isinstance(data, dict):
            raise CroplandError("the checkpoint holds no run settings (spec); retrain with `cropland train`")
        return cls.from_dict(data)
