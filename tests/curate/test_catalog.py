"""The catalogue: every sample GeoTIFF of ``tif/`` by id, with its split from splits.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cropland.curate.catalog import Catalog
from cropland.dataset import Splits, read_splits, write_splits


def test_catalog_maps_every_geotiff_to_its_point_split(dataset: Path):
    catalog = Catalog(dataset)
    files = sorted((dataset / "tif").glob("*/*/*.tif"))
    splits = json.loads((dataset / "splits.json").read_text())["assignments"]
    assert sorted(catalog) == sorted(f.stem for f in files) and len(catalog) == len(files)
    for f in files:
        sample = catalog[f.stem]
        point_id = int(f.stem.split("_")[1])
        assert (sample.path, sample.name.point_id, sample.split) == (f, point_id, splits[str(point_id)])
        assert sample.name.label == f.parent.name and sample.id == f.stem
    with pytest.raises(KeyError):
        catalog["POINT_999_201907_AB_CORN"]
    assert "../tif/2019" not in catalog


def test_catalog_version_follows_the_index_rows(dataset: Path, tmp_path: Path):
    copy = tmp_path / "moved"
    shutil.copytree(dataset, copy)
    version = Catalog(copy).version
    assert version == Catalog(dataset).version  # the rows hold relative paths: moving changes nothing
    splits = read_splits(copy / "splits.json")
    point, split = next(iter(splits.assignments.items()))
    splits.assignments[point] = "test" if split != "test" else "train"
    write_splits(Splits(splits.assignments, splits.seed, splits.fractions), copy / "splits.json")
    moved_split = Catalog(copy).version
    assert moved_split != version
    next((copy / "tif").glob("*/*/*.tif")).unlink()
    assert Catalog(copy).version not in (version, moved_split)
