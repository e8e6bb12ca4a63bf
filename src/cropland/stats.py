"""Statistics of a built dataset: count tables (CSV), charts (PNG) and a Markdown report.

Counts come from the sample GeoTIFFs' file names (``OUT/tif``) and ``splits.json``;
provenance (scenes, cloud and no-data fractions, synthetic or real) from their tags.
"""

from __future__ import annotations

import calendar
import logging
import math
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from matplotlib.figure import Figure
from rich.progress import Progress

from cropland.core.naming import SampleName
from cropland.dataset import REPORT_FILE, SPLIT_NAMES, STATS_DIR, DatasetFolder
from cropland.errors import DatasetError
from cropland.io import atomic_path, write_table, write_text_atomic
from cropland.parallel import chunked, default_workers, imap_bounded

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
#: Below this many samples, tags are read in this process (a pool's start-up costs ~1 s).
POOL_MIN_SAMPLES = 2000
NUMERIC_TAGS = ("N_SCENES", "CLOUD_FRACTION", "NODATA_FRACTION")
SAMPLE_COLUMNS = ["name", "point_id", "year", "month", "province", "label", "split"]
TAG_COLUMNS = {
    "ACI_CODE": "aci_code", "N_SCENES": "n_scenes", "SCENES": "scenes",
    "CLOUD_FRACTION": "cloud_fraction", "NODATA_FRACTION": "nodata_fraction",
    "NEGATIVE_FRACTION": "negative_fraction", "ABOVE_ONE_FRACTION": "above_one_fraction",
    "SYNTHETIC": "synthetic", "SOURCE": "source", "INDEX_VARIANT": "index_variant",
    "NDWI": "ndwi", "CROPLAND_VERSION": "cropland_version",
}


def _read_tags(path: Path) -> dict[str, str]:
    try:
        with rasterio.open(path) as src:
            return src.tags()
    except rasterio.errors.RasterioError as e:
        raise DatasetError(f"{path} is corrupt ({e}); delete it and rebuild the sample") from None


def _tag_rows(chunk: list[tuple[SampleName, Path]]) -> list[tuple[SampleName, list[str | None]]]:
    """The provenance tags of a chunk of samples (run in worker processes)."""
    rows = []
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):  # no folder listing per open
        for name, path in chunk:
            tags = _read_tags(path)
            missing = [tag for tag in NUMERIC_TAGS if tag not in tags]
            if missing:
                raise DatasetError(f"{path} lacks the tags {', '.join(missing)}: it is not a "
                                   "cropland sample GeoTIFF; move it out of tif/ or rebuild it")
            rows.append((name, [tags.get(tag) for tag in TAG_COLUMNS]))
    return rows


class _Columns:
    """A table built row by row in little memory: numbers in typed arrays, and each repeated
    text (class, split, source, scene list, ...) stored once and referenced by every row."""

    NUMBERS = {"point_id": "q", "year": "q", "month": "q", "n_scenes": "q",
               "cloud_fraction": "d", "nodata_fraction": "d", "negative_fraction": "d",
               "above_one_fraction": "d"}

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.data: dict[str, Any] = {
            c: array(self.NUMBERS[c]) if c in self.NUMBERS else [] for c in columns
        }
        self.texts: dict[str, str] = {}

    def append(self, values: Sequence[Any]) -> None:
        for column, value in zip(self.columns, values, strict=True):
            if column in self.NUMBERS:
                self.data[column].append(_number(value, self.NUMBERS[column]))
            elif column == "name" or value is None:
                self.data[column].append(value)
            else:
                self.data[column].append(self.texts.setdefault(value, value))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: np.asarray(v) if c in self.NUMBERS else v
                             for c, v in self.data.items()}, columns=self.columns)


def _number(value: Any, kind: str) -> float | int:
    if kind == "d":
        return math.nan if value is None else float(value)  # tags older builds lack
    return int(value)


def scan_dataset(out_dir: str | Path, with_tags: bool = True,
                 workers: int | None = None) -> pd.DataFrame:
    """One row per sample GeoTIFF: its name fields, split and (optionally) provenance tags.

    The split is ``unassigned`` when the dataset has no ``splits.json`` yet. Memory grows by
    a few hundred bytes per sample (repeated texts are shared); the tags are read in
    ``workers`` processes (default: the available cores, at most 8, from
    ``POOL_MIN_SAMPLES`` samples on).
    """
    folder = DatasetFolder(out_dir)
    splits = folder.splits() if folder.splits_path.exists() else None
    columns = SAMPLE_COLUMNS + (list(TAG_COLUMNS.values()) if with_tags else [])
    table, total = _Columns(columns), folder.count_samples()
    if workers is None:  # processes only where their start-up pays off
        workers = default_workers() if total >= POOL_MIN_SAMPLES else 1
    chunks = chunked(folder.samples(), 256)
    rows = (imap_bounded(_tag_rows, chunks, workers) if with_tags
            else ([(name, []) for name, _ in chunk] for chunk in chunks))
    with Progress(transient=True, disable=not with_tags) as progress:
        task = progress.add_task("reading tags", total=total)
        for chunk in rows:
            for name, tags in chunk:
                split = splits.split_of(name.point_id) if splits else UNASSIGNED
                table.append([name.stem, name.point_id, name.year, name.month, name.province,
                              name.label, split, *tags])
            progress.advance(task, len(chunk))
    return table.frame()


def count_tables(samples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The count tables of the report, keyed by file stem (``class``, ``month``, ...)."""
    def per(column: str, label: str) -> pd.DataFrame:
        grouped = samples.groupby(column)
        return pd.DataFrame({
            label: grouped.size().index,
            "images": grouped.size().to_numpy(),
            "points": grouped["point_id"].nunique().to_numpy(),
        })

    per_point = samples.groupby("point_id").size()
    images_per_point = per_point.value_counts().sort_index()
    by_split = pd.crosstab(samples["label"], samples["split"])
    split_columns = [s for s in (*SPLIT_NAMES, UNASSIGNED) if s in by_split.columns]
    by_split = by_split.reindex(columns=split_columns, fill_value=0)
    by_split["total"] = by_split.sum(axis=1)
    by_split = by_split.rename_axis(index="class", columns=None).reset_index()
    months = per("month", "month")
    months.insert(1, "name", [calendar.month_abbr[m] for m in months["month"]])
    return {
        "class": per("label", "class"),
        "month": months,
        "province": per("province", "province"),
        "year": per("year", "year"),
        "images_per_point": pd.DataFrame({
            "images": images_per_point.index, "points": images_per_point.to_numpy()
        }),
        "class_by_split": by_split,
    }


def sanity_table(samples: pd.DataFrame) -> pd.DataFrame:
    """Reflectance sanity per year: images with negative values or values above 1, and the
    mean share of such values (samples written before the tags existed count as unknown)."""
    grouped = samples.groupby("year")
    table = pd.DataFrame({
        "images": grouped.size(),
        "with_negative": grouped["negative_fraction"].agg(lambda v: int((v > 0).sum())),
        "negative_share": grouped["negative_fraction"].mean().round(6),
        "with_above_one": grouped["above_one_fraction"].agg(lambda v: int((v > 0).sum())),
        "above_one_share": grouped["above_one_fraction"].mean().round(6),
    })
    return table.rename_axis("year").reset_index()


def _bar_chart(table: pd.DataFrame, x: str, title: str, horizontal: bool = False) -> Figure:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    positions, labels = range(len(table)), table[x].astype(str).tolist()
    if horizontal:
        bars = ax.barh(positions, table["images"], color="tab:green")
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xlabel("images")
    else:
        bars = ax.bar(positions, table["images"], color="tab:green")
        ax.set_xticks(positions, labels)
        ax.set_ylabel("images")
    ax.bar_label(bars, padding=2, fontsize=8)
    if horizontal:  # room for the labels
        ax.margins(x=0.08)
    else:
        ax.margins(y=0.08)
    ax.set_title(title)
    return fig


def charts(tables: dict[str, pd.DataFrame]) -> dict[str, Figure]:
    """A chart per count table, keyed by file stem."""
    out = {
        "class": _bar_chart(tables["class"], "class", "Images per class", horizontal=True),
        "month": _bar_chart(tables["month"], "name", "Images per month"),
        "province": _bar_chart(tables["province"], "province", "Images per province"),
        "year": _bar_chart(tables["year"], "year", "Images per year"),
    }
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ipp = tables["images_per_point"]
    ax.bar_label(ax.bar(ipp["images"], ipp["points"], color="tab:blue"), padding=2, fontsize=8)
    ax.set_xticks(ipp["images"])
    ax.margins(y=0.08)
    ax.set(title="Images per point (all years)", xlabel="images of the point", ylabel="points")
    out["images_per_point"] = fig

    by_split = tables["class_by_split"].set_index("class").drop(columns="total")
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    left = pd.Series(0, index=by_split.index)
    for split, color in zip(by_split.columns, ("tab:green", "tab:orange", "tab:purple", "grey"),
                            strict=False):
        ax.barh(by_split.index, by_split[split], left=left, label=split, color=color)
        left = left + by_split[split]
    ax.invert_yaxis()
    ax.set(title="Images per class and split", xlabel="images")
    fig.legend(loc="outside lower center", ncols=len(by_split.columns))
    out["class_by_split"] = fig
    return out


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save a figure as PNG (Agg, 100 dpi), atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (no index)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(t) else "---"
                          for t in df.dtypes) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


SECTIONS = {
    "class": "Images per class",
    "month": "Images per month",
    "province": "Images per province",
    "year": "Images per year",
    "images_per_point": "Images per point (over all years)",
    "class_by_split": "Images per class and split",
}


def _dataset_name(root: Path) -> str:
    folder = DatasetFolder(root)
    return folder.config().name if folder.config_path.exists() else root.name


def _summary(samples: pd.DataFrame) -> list[str]:
    lines = [
        f"- images: {len(samples)}",
        f"- points: {samples['point_id'].nunique()}",
        f"- classes: {samples['label'].nunique()} ({', '.join(sorted(samples['label'].unique()))})",
        f"- years: {', '.join(map(str, sorted(samples['year'].unique())))}",
        f"- months: {', '.join(calendar.month_abbr[m] for m in sorted(samples['month'].unique()))}",
    ]
    if "synthetic" in samples:
        synthetic = int((samples["synthetic"] == "yes").sum())
        lines.append(f"- synthetic images: {synthetic} of {len(samples)}")
        lines.append(f"- mean cloud fraction: {samples['cloud_fraction'].mean():.3f}; "
                     f"mean no-data fraction: {samples['nodata_fraction'].mean():.3f}; "
                     f"mean scenes per image: {samples['n_scenes'].mean():.2f}")
    return lines


def render_report(name: str, samples: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    """The Markdown report; charts are linked as ``stats/{table}.png``."""
    parts = [f"# {name}: dataset statistics", "", *_summary(samples), ""]
    for key, title in SECTIONS.items():
        parts += [f"## {title}", "", markdown_table(tables[key]), "",
                  f"![{title}]({STATS_DIR}/{key}.png)", ""]
    if "reflectance_sanity" in tables:
        parts += ["## Reflectance sanity (per year)", "",
                  "Images with reflectance below 0 or above 1, and the mean share of such values "
                  "among their values (tags `NEGATIVE_FRACTION`, `ABOVE_ONE_FRACTION`). Negative "
                  "values in many images of some years only point to a baseline offset applied "
                  "to DN that did not carry it; values above 1 are bright clouds or snow.", "",
                  markdown_table(tables["reflectance_sanity"]), ""]
    parts.append(f"Tables as CSV: `{STATS_DIR}/*.csv`. Dataset card: `dataset_card.md`.")
    return "\n".join(parts) + "\n"


def write_report(out_dir: str | Path, samples: pd.DataFrame | None = None) -> Path:
    """Write ``OUT/stats/*.csv``, ``OUT/stats/*.png`` and ``OUT/report.md``; return the report.

    Args:
        out_dir: the dataset folder.
        samples: the result of :func:`scan_dataset`, when the caller already has it.
    """
    root = Path(out_dir)
    samples = scan_dataset(root) if samples is None else samples
    if samples.empty:
        raise DatasetError(f"{root / 'tif'} holds no sample GeoTIFF; build the dataset first")
    tables = count_tables(samples)
    if "negative_fraction" in samples:
        tables["reflectance_sanity"] = sanity_table(samples)
    stats_dir = root / STATS_DIR
    for key, table in tables.items():
        write_table(table, stats_dir / f"{key}.csv")
    for key, fig in charts(tables).items():
        save_figure(fig, stats_dir / f"{key}.png")
    report = write_text_atomic(root / REPORT_FILE, render_report(_dataset_name(root), samples,
                                                                 tables))
    log.info("wrote %s and %d tables/charts in %s", report, 2 * len(tables), stats_dir)
    return report

