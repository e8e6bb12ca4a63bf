"""The catalogue: every sample GeoTIFF of ``tif/`` by id, with its split from splits.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cropland.curate.catalog import Catalog


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
