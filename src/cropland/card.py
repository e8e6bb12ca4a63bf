"""The dataset card (``OUT/dataset_card.md``): composition, provenance, licence, splits.

Provenance is read from the samples' tags (``SYNTHETIC``, ``SOURCE``, ``SCENES``), not from
the configuration, so the card says what the files are, whatever produced them.
"""

from __future__ import annotations

import calendar
import json
from pathlib import Path

import pandas as pd

from cropland.config import BuildConfig
from cropland.core.classes import get_class
from cropland.core.provinces import PROVINCES
from cropland.dataset import CARD_FILE, REPORT_FILE, SPLIT_NAMES, SPLITS_FILE, DatasetFolder, Splits
from cropland.errors import DatasetError
from cropland.io import write_text_atomic
from cropland.stats import scan_dataset

ARXIV = "2306.00114"
CITATION = """\
@article{boatswainjacques2023canadian,
  title   = {The Canadian Cropland Dataset: A New Land Cover Dataset for Multitemporal
             Deep Learning Classification in Agriculture},
  author  = {Boatswain Jacques, Amanda A. and Diallo, Abdoulaye Banir{\\'e} and Lord, Etienne},
  journal = {arXiv preprint arXiv:2306.00114},
  year    = {2023}
}"""

#: Index formulas by (variant, NDWI formula), as computed by cropland.core.indices.
FORMULAS = {
    "documented": {
        "NDVI": "(B8 - B4) / (B8 + B4)",
        "NDVI45": "(B5 - B4) / (B5 + B4)",
        "GNDVI": "(B8 - B3) / (B8 + B3)",
        "OSAVI": "(B8 - B4) / (B8 + B4 + 0.16)",
        "PSRI": "(B4 - B2) / B6",
    },
    "original": {
        "NDVI": "(B7 - B4) / (B7 + B4)",
        "NDVI45": "(B5 - B4) / (B5 + B4)",
        "GNDVI": "(B7 - B3) / (B7 + B3)",
        "OSAVI": "1.16 (B8 - B4) / (B8 + B4 + 0.61)",
        "PSRI": "(B4 - B2) / B6",
    },
}
NDWI = {
    "gao": "(B8 - B11) / (B8 + B11) (Gao 1996, vegetation water)",
    "mcfeeters": "(B3 - B8) / (B3 + B8) (McFeeters 1996, open water)",
}


def _composition(samples: pd.DataFrame, cfg: BuildConfig | None) -> list[str]:
    classes = sorted(samples["label"].unique())
    class_rows = [
        f"| {name} | {get_class(name).code} | {get_class(name).label} | "
        f"{int((samples['label'] == name).sum())} | "
        f"{samples.loc[samples['label'] == name, 'point_id'].nunique()} |"
        for name in classes
    ]
    provinces = sorted(samples["province"].unique())
    lines = [
        "## Composition",
        "",
        f"- {len(samples)} images of {samples['point_id'].nunique()} points "
        f"(field centres), {len(classes)} classes.",
        f"- Years: {', '.join(map(str, sorted(samples['year'].unique())))}; months: "
        f"{', '.join(calendar.month_name[m] for m in sorted(samples['month'].unique()))} "
        "(one median composite per month).",
        f"- Provinces: {', '.join(f'{p} ({PROVINCES[p]})' for p in provinces)}.",
    ]
    if cfg is not None:
        lines.append(
            f"- Patches of {cfg.patch_size} x {cfg.patch_size} pixels of {cfg.resolution:g} m "
            f"in {cfg.crs}, centred on the point; 12 Sentinel-2 bands, 6 indices and a VALID "
            "band per GeoTIFF (see docs/format.md)."
        )
    lines += [
        "- A point's label is the Annual Crop Inventory class of that year; it can change "
        "between years (crop rotation).",
        "",
        "| class | ACI code | ACI label | images | points |",
        "|---|---:|---|---:|---:|",
        *class_rows,
        "",
        f"Counts by month, province, year and split, with charts: [{REPORT_FILE}]({REPORT_FILE}).",
    ]
    return lines


#: What each product level means for a user of the data, beside the published release.
LEVEL_MEANING = {
    "L1C": "Level-1C: top-of-atmosphere reflectance, the level of the published release "
           "(Earth Engine `COPERNICUS/S2`): images of the same kind, hazy where the air is.",
    "L2A": "Level-2A: surface reflectance (atmospherically corrected). The published release is "
           "Level-1C: its images are of another kind (bluish haze); do not mix the two in one "
           "training set.",
}


def _provenance(samples: pd.DataFrame, cfg: BuildConfig | None) -> list[str]:
    sources = [json.loads(s) for s in samples["source"].dropna().unique()]
    kinds = sorted({str(s.get("kind", "unknown")) for s in sources})
    levels = sorted({str(s.get("level")) for s in sources if s.get("level")})
    scenes = {sc for value in samples["scenes"].dropna().unique() for sc in value.split(",") if sc}
    synthetic = int((samples["synthetic"] == "yes").sum())
    nature = (
        "**synthetic** (simulated by cropland; no real observation)" if synthetic == len(samples)
        else "**real** Sentinel-2 observations" if synthetic == 0
        else f"**mixed**: {synthetic} synthetic and {len(samples) - synthetic} real images"
    )
    lines = [
        "## Provenance",
        "",
        f"- Pixels: {nature}.",
        f"- Source: {', '.join(kinds)}; product level: {', '.join(levels) or 'unknown'}.",
        *[f"- {LEVEL_MEANING[level]}" for level in levels if level in LEVEL_MEANING],
        f"- Scenes: {len(scenes)} distinct scenes; {samples['n_scenes'].mean():.2f} scenes "
        "per composite on average.",
        f"- Mean share of cloud/shadow pixels in the scenes used: "
        f"{samples['cloud_fraction'].mean():.3f}; mean share of pixels without a clear "
        f"observation: {samples['nodata_fraction'].mean():.3f}.",
        "- Per-sample provenance (scene ids, source options, fractions) is in each "
        "GeoTIFF's tags.",
        f"- Built by cropland {', '.join(sorted(samples['cropland_version'].dropna().unique()))}.",
    ]
    if cfg is not None:
        lines.append(
            f"- Scene filter: cloud cover below {cfg.source.max_scene_cloud:g} %; seed {cfg.seed}."
        )
    return lines


def _indices(samples: pd.DataFrame) -> list[str]:
    lines = ["## Vegetation indices", ""]
    for (variant, ndwi), _ in samples.groupby(["index_variant", "ndwi"]):
        formulas = {**FORMULAS[str(variant)], "NDWI": NDWI[str(ndwi)]}
        lines += [f"Variant `{variant}`, NDWI `{ndwi}`:", "", "| index | formula |", "|---|---|"]
        lines += [f"| {name} | {formula} |" for name, formula in formulas.items()]
        lines.append("")
    lines.append("Reflectance is (DN + offset) / 10000; a zero denominator gives NaN.")
    return lines


def _splits(samples: pd.DataFrame, splits: Splits | None) -> list[str]:
    if splits is None:
        return ["## Splits", "", f"No `{SPLITS_FILE}` yet: the samples are not split."]
    rows = [
        f"| {name} | {splits.fractions.get(name, 0):.2f} | "
        f"{samples.loc[samples['split'] == name, 'point_id'].nunique()} | "
        f"{int((samples['split'] == name).sum())} |"
        for name in SPLIT_NAMES
    ]
    return [
        "## Splits",
        "",
        f"Grouped by point: every image of a point, whatever the year and image type, is in "
        f"the same split. Stratified by each point's most frequent class; seed "
        f"{splits.seed}; `{SPLITS_FILE}` sha256 `{splits.sha256}`.",
        "",
        "| split | fraction | points | images |",
        "|---|---:|---:|---:|",
        *rows,
    ]


def _licence(samples: pd.DataFrame) -> list[str]:
    synthetic = samples["synthetic"] == "yes"
    lines = ["## Licence", ""]
    if synthetic.any():
        lines.append(
            "- Synthetic images: generated by cropland's Sentinel-2 simulator, released under "
            "the MIT licence like cropland. They follow the Canadian Cropland Dataset's format "
            "and class names but are not derived from its images and hold no real observation."
        )
    if (~synthetic).any():
        years = ", ".join(map(str, sorted(samples.loc[~synthetic, "year"].unique())))
        lines += [
            f"- Real images contain modified Copernicus Sentinel data ({years}), free to use "
            "with attribution; labels come from the AAFC Annual Crop Inventory (Open "
            "Government Licence - Canada).",
            "- Data derived from the published Canadian Cropland Dataset (its points, PNGs or "
            "raw files) are under its Montreal Data License (CC BY 4.0 terms, research use, "
            "not for commercial purposes).",
        ]
    return lines


def render_card(
    name: str, samples: pd.DataFrame, cfg: BuildConfig | None, splits: Splits | None
) -> str:
    """The Markdown dataset card of a scanned dataset (see :func:`cropland.stats.scan_dataset`)."""
    kind = "synthetic " if (samples["synthetic"] == "yes").all() else ""
    parts = [
        f"# Dataset card: {name}",
        "",
        f"A {kind}multitemporal Sentinel-2 patch dataset of Canadian fields in the format of "
        f"the Canadian Cropland Dataset (arXiv {ARXIV}), built by cropland.",
        "",
        *_composition(samples, cfg), "",
        *_provenance(samples, cfg), "",
        *_indices(samples), "",
        *_splits(samples, splits), "",
        *_licence(samples), "",
        "## How to cite",
        "",
        "Cite the Canadian Cropland Dataset paper "
        f"([arXiv {ARXIV}](https://arxiv.org/abs/{ARXIV})):",
        "",
        "```bibtex",
        CITATION,
        "```",
    ]
    return "\n".join(parts) + "\n"


def write_card(out_dir: str | Path, samples: pd.DataFrame | None = None) -> Path:
    """Write ``OUT/dataset_card.md``; ``samples`` is :func:`scan_dataset`'s table if known."""
    root = Path(out_dir)
    samples = scan_dataset(root) if samples is None else samples
    if samples.empty:
        raise DatasetError(f"{root / 'tif'} holds no sample GeoTIFF; build the dataset first")
    folder = DatasetFolder(root)
    cfg = folder.config() if folder.config_path.exists() else None
    splits = folder.splits() if folder.splits_path.exists() else None
    name = cfg.name if cfg is not None else root.name
    return write_text_atomic(root / CARD_FILE, render_card(name, samples, cfg, splits))
