"""The release layout: the one place that knows where each file of a dataset lives.

See ``docs/format.md``::

    OUT/tif/{year}/{CLASS}/NAME.tif
    OUT/{year}/{TYPE}/{split}/{CLASS}/NAME_{TYPE}.png
    OUT/raw/{year}/{CLASS}/NAME.zip
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cropland.core.naming import SampleName
from cropland.errors import NameFormatError

#: Split folder names of the published PNG tree, in order.
SPLIT_NAMES: tuple[str, ...] = ("training", "validation", "test")

CONFIG_FILE = "config.yaml"
POINTS_FILE = "points.csv"
SPLITS_FILE = "splits.json"
STATS_DIR = "stats"
REPORT_FILE = "report.md"
CARD_FILE = "dataset_card.md"


def tif_path(root: str | Path, sample: SampleName) -> Path:
    """``OUT/tif/{year}/{CLASS}/NAME.tif``: the sample GeoTIFF."""
    return Path(root) / "tif" / str(sample.year) / sample.label / f"{sample.stem}.tif"


def png_path(root: str | Path, sample: SampleName, image_type: str, split: str) -> Path:
    """``OUT/{year}/{TYPE}/{split}/{CLASS}/NAME_{TYPE}.png``: one PNG of the published tree."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_NAMES)}")
    name = f"{sample.with_type(image_type)}.png"
    return Path(root) / str(sample.year) / image_type / split / sample.label / name


def raw_zip_path(root: str | Path, sample: SampleName) -> Path:
    """``OUT/raw/{year}/{CLASS}/NAME.zip``: the sample's single-band GeoTIFFs."""
    return Path(root) / "raw" / str(sample.year) / sample.label / f"{sample.stem}.zip"


def iter_samples(root: str | Path) -> Iterator[tuple[SampleName, Path]]:
    """The samples of a built dataset, from its ``tif/`` tree, sorted by path.

    Temporary files of interrupted writes (``.NAME.tif.*.tmp``) are not samples and are
    skipped; a ``.tif`` whose name is not a sample name is reported by name.
    """
    tif_root = Path(root) / "tif"
    for path in sorted(tif_root.glob("*/*/*.tif")):
        if path.name.startswith("."):
            continue
        try:
            sample, _ = SampleName.parse(path.name)
        except NameFormatError as e:
            raise NameFormatError(f"{path}: {e}") from None
        yield sample, path
