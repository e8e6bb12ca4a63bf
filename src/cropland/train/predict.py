"""``cropland predict`` and ``cropland evaluate``: use a trained run on files or a dataset.

Inputs are read, then cropped, resized and normalised by the same
:class:`~cropland.data.preprocess.Preprocessing` as in training (from the
:class:`~cropland.train.spec.RunSpec` stored in the checkpoint). A temporal model gets the
months of one point-year as a series with the missing months masked (a triplet model accepts
that too: its recurrence skips masked months).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cropland.configfile import read_mapping, validate
from cropland.core.naming import SampleName
from cropland.data.channels import TIF_CHANNELS, channel_image_type, png_channels
from cropland.data.readers import open_reader, read_png
from cropland.errors import CroplandError, DatasetError
from cropland.train.checkpoint import load_checkpoint
from cropland.train.config import TrainConfig
from cropland.train.loop import (
    build_model,
    choose_loading,
    evaluate_split,
    load_split,
    make_dataset,
    resolve_device,
)
from cropland.train.spec import RunSpec

log = logging.getLogger(__name__)


def load_run(checkpoint: str | Path, device: str = "auto") -> tuple[torch.nn.Module, RunSpec]:
    """The model of ``best.pt`` (or a run folder) and its spec."""
    path = Path(checkpoint)
    path = path / "best.pt" if path.is_dir() else path
    if not path.exists():
        raise CroplandError(f"{path} not found; give a run folder of `cropland train` or its best.pt")
    state = load_checkpoint(path)
    spec = RunSpec.from_checkpoint(state)
    model = build_model(spec)
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device)).eval(), spec


def read_files(paths: Sequence[Path], channels: Sequence[str], render: dict | None = None) -> np.ndarray:
    """Channels of one sample from its GeoTIFF or its PNGs (float32, reader units); PNG
    channels are rendered from a GeoTIFF with ``render`` (a build's ``render:`` settings)."""
    tif = [p for p in paths if p.suffix.lower() in (".tif", ".tiff")]
    if tif and all(c in TIF_CHANNELS for c in channels):
        from cropland.export.geotiff import open_sample

        with open_sample(tif[0]) as src:
            return src.read([TIF_CHANNELS.index(c) + 1 for c in channels], out_dtype="float32")
    if tif:  # a model trained on PNGs: render them from the GeoTIFF as the export does
        return _render_pngs(tif[0], channels, render)
    planes: dict[str, np.ndarray] = {}
    for path in paths:
        _, image_type = SampleName.parse(path.name)
        if image_type is None:
            raise DatasetError(f"{path}: a PNG name must end in its image type (_RGB, _NDVI, ...)")
        planes.update(zip(png_channels(image_type), read_png(path, image_type), strict=True))
    missing = [c for c in channels if c not in planes]
    if missing:
        raise DatasetError(f"{paths[0]}: the model also needs {', '.join(missing)} (give those PNGs too)")
    return np.stack([planes[c] for c in channels]).astype(np.float32) / np.float32(255)


def _render_pngs(path: Path, channels: Sequence[str], render: dict | None) -> np.ndarray:
    from cropland.config import RenderConfig
    from cropland.export.geotiff import load_sample
    from cropland.export.png import render_type

    sample = load_sample(path).data
    planes: dict[str, np.ndarray] = {}
    for image_type in dict.fromkeys(channel_image_type(c) for c in channels):
        rendered = render_type(sample, image_type, RenderConfig(**(render or {}))).transpose(2, 0, 1)
        planes.update(zip(png_channels(image_type), rendered, strict=False))
    return np.stack([planes[c] for c in channels]).astype(np.float32) / np.float32(255)


def collect_files(inputs: Sequence[str | Path], spec: RunSpec) -> dict[SampleName, list[Path]]:
    """Files (or every .tif/.png under folders) that hold the model's channels, by sample."""
    types = {channel_image_type(c) for c in spec.channels}
    found: dict[SampleName, list[Path]] = defaultdict(list)
    for item in map(Path, inputs):
        if not item.exists():
            raise DatasetError(f"{item} does not exist; give sample files or folders")
        paths = sorted(item.rglob("*")) if item.is_dir() else [item]
        for path in paths:
            if path.suffix.lower() not in (".tif", ".tiff", ".png"):
                continue
            name, image_type = SampleName.parse(path.name)
            if path.suffix.lower() == ".png" and image_type not in types:
                continue
            found[name].append(path)
    if not found:
        raise DatasetError(f"no sample files with channels {list(spec.channels)} in {', '.join(map(str, inputs))}")
    return found


def predict_files(checkpoint: str | Path, inputs: Sequence[str | Path], device: str = "auto") -> list[dict]:
    """Predict sample files: one result per file (static) or per point-year (temporal)."""
    model, spec = load_run(checkpoint, device)
    prepare = spec.preprocessing
    files = collect_files(inputs, spec)
    arrays = {name: prepare(read_files(p, spec.channels, spec.render)) for name, p in files.items()}
    return _predict(model, spec, arrays)


def predict_point(
    checkpoint: str | Path, dataset: str | Path, point_id: int, year: int, device: str = "auto"
) -> list[dict]:
    """Predict one point and year of a dataset folder (any reader)."""
    model, spec = load_run(checkpoint, device)
    prepare = spec.preprocessing
    reader = open_reader(dataset, ",".join(spec.channels))
    rows = [i for i, r in enumerate(reader.records) if r.name.point_id == point_id and r.name.year == year]
    if not rows:
        raise DatasetError(f"point {point_id} has no sample in {year} in {dataset}")
    arrays = {reader.records[i].name: prepare(reader.read(i, spec.channels)) for i in rows}
    return _predict(model, spec, arrays)


def predict_source(
    checkpoint: str | Path, config: str | Path, point_id: int, year: int, device: str = "auto"
) -> list[dict]:
    """Extract the months of one point and year through a build configuration's source
    (its points table gives the point's place), then predict them."""
    import tempfile

    from cropland.config import load_config
    from cropland.extraction.runner import extract, load_build_points
    from cropland.points.table import write_points

    cfg = load_config(config)
    points = load_build_points(cfg)
    row = points[(points["point_id"] == point_id) & (points["year"] == year)]
    if row.empty:
        raise DatasetError(f"point {point_id} in {year} is not in the points of {config}")
    with tempfile.TemporaryDirectory(prefix="cropland-predict-") as tmp:
        table = write_points(row, Path(tmp) / "points.csv")
        one = load_config(config, output=str(Path(tmp) / "build"), years=[year], points={"path": str(table)})
        extract(one, progress=False)
        return predict_files(checkpoint, [Path(tmp) / "build" / "tif"], device)


@torch.no_grad()
def _predict(model: torch.nn.Module, spec: RunSpec, arrays: dict[SampleName, torch.Tensor]) -> list[dict]:
    device = next(model.parameters()).device
    results = []
    if spec.temporal:
        groups: dict[tuple[int, int], dict[int, SampleName]] = defaultdict(dict)
        for name in arrays:
            groups[(name.point_id, name.year)][name.month] = name
        for (point, year), by_month in sorted(groups.items()):
            months = spec.months
            first = next(iter(arrays.values()))
            x = torch.stack([arrays[by_month[m]] if m in by_month else torch.zeros_like(first) for m in months])
            mask = torch.tensor([[m in by_month for m in months]], device=device)
            month_ids = torch.tensor([[m if m in by_month else 0 for m in months]], device=device)
            logits = model(x[None].to(device), mask=mask, months=month_ids)
            results.append(_result(f"POINT_{point}_{year}", logits[0], spec))
    else:
        for name, image in sorted(arrays.items()):
            results.append(_result(name.stem, model(image[None].to(device))[0], spec))
    return results


def _result(item: str, logits: torch.Tensor, spec: RunSpec) -> dict:
    probs = logits.float().softmax(0).cpu().numpy()
    best = int(probs.argmax())
    return {"item": item, "predicted": spec.classes[best], "probability": float(probs[best]),
            "probabilities": dict(zip(spec.classes, map(float, probs), strict=True))}


def evaluate_run(run: str | Path, split: str = "test", dataset: str | Path | None = None, device: str = "auto") -> dict:
    """Metrics of a run's best checkpoint on a split of its dataset (or another ``dataset``).

    Labels index the model's classes: a split (or a dataset of one year) that lacks some of
    them is evaluated on the classes it has; a class the model does not know is an error.
    """
    run = Path(run)
    if not ((run / "config.yaml").is_file() and (run / "best.pt").is_file()):
        raise CroplandError(f"{run} has no config.yaml and best.pt; give a run folder of "
                            "`cropland train`")
    cfg = validate(TrainConfig, read_mapping(run / "config.yaml", "a run folder's config.yaml"),
                   str(run / "config.yaml"))
    cfg = cfg.model_copy(update={"device": str(resolve_device(device))})
    if dataset is not None:
        cfg = cfg.model_copy(update={"dataset": Path(dataset)})
    model, spec = load_run(run, cfg.device)
    reader = open_reader(cfg.dataset, ",".join(spec.channels), cfg.source)
    unknown = [c for c in reader.classes if c not in spec.classes]
    if unknown:
        raise DatasetError(f"{cfg.dataset} has classes {', '.join(unknown)} that the model was not trained on "
                           f"(it knows {', '.join(spec.classes)})")
    target = resolve_device(cfg.device)
    split_data = make_dataset(reader, split, spec)
    data = load_split(split_data, spec, target, choose_loading(cfg, [split_data], spec, target), cfg.workers)
    metrics, _ = evaluate_split(model, data, spec.classes, cfg)
    return metrics
