"""The release holds exactly the dataset's files, validates, loads and republishes identically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import rasterio
import yaml
from PIL import Image

from cropland.core.naming import SampleName
from cropland.publish import publish

SPLIT_FILES = {"training": "train", "validation": "validation", "test": "test"}


def _static_rows(release: Path) -> pd.DataFrame:
    files = sorted((release / "data" / "static").glob("*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_every_sample_once_with_its_files(dataset: Path, release: Path):
    rows = _static_rows(release)
    tifs = sorted((dataset / "tif").rglob("*.tif"))
    assert sorted(rows["sample_id"]) == sorted(t.stem for t in tifs)
    splits = json.loads((dataset / "splits.json").read_text())["assignments"]
    points = pd.read_csv(dataset / "points.csv").set_index(["point_id", "year"])
    classes = sorted({SampleName.parse(t.name)[0].label for t in tifs})
    for _, row in rows.iterrows():
        name = SampleName.parse(row["sample_id"])[0]
        assert row["split"] == splits[str(name.point_id)]
        assert row["class_name"] == name.label and row["label"] == classes.index(name.label)
        assert (row["lon"], row["lat"]) == tuple(points.loc[(name.point_id, name.year), ["lon", "lat"]])
        for image_type in ("RGB", "NDVI", "PSRI"):
            png = (
                dataset / str(name.year) / image_type / row["split"] / name.label / f"{name.with_type(image_type)}.png"
            )
            assert row[image_type.lower()]["bytes"] == png.read_bytes()
        with rasterio.open(dataset / "tif" / str(name.year) / name.label / f"{name.stem}.tif") as src:
            expected = src.read(list(range(1, 19)))
            assert row["n_scenes"] == int(src.tags()["N_SCENES"])
        array = np.array([np.stack(plane) for plane in row["multispectral"]], dtype=np.float32)
        np.testing.assert_array_equal(array, expected)  # bit-exact, NaN where NaN


def test_shards_are_split_and_sized(release: Path):
    shards = sorted((release / "data" / "static").glob("*.parquet"))
    assert any("-00001-of-" in s.name for s in shards), "max_shard_mb=1 should cut the training split"
    for shard in shards:
        split = pq.read_table(shard, columns=["split"])["split"].to_pylist()
        assert {SPLIT_FILES[s] for s in split} == {shard.name.split("-")[0]}
    temporal = _rows(release / "data" / "temporal")
    assert all(list(m) == sorted(m) for m in temporal["months"])
    assert temporal.groupby(["point_id", "year"]).size().max() == 1


def _rows(folder: Path) -> pd.DataFrame:
    return pd.concat([pq.read_table(f).to_pandas() for f in sorted(folder.glob("*.parquet"))], ignore_index=True)


def test_checksums_card_and_citation(release: Path):
    lines = (release / "SHA256SUMS").read_text().splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in lines}
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert set(listed) == files
    for path, digest in listed.items():
        assert hashlib.sha256((release / path).read_bytes()).hexdigest() == digest
    header = yaml.safe_load((release / "README.md").read_text().split("---")[1])
    assert header["license"] == "mit" and header["task_categories"] == ["image-classification"]
    names = [c["config_name"] for c in header["configs"]]
    assert names[:2] == ["default", "rgb"] and "temporal" in names and "multispectral" in names
    cff = yaml.safe_load((release / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["preferred-citation"]["doi"] == "10.48550/arXiv.2306.00114"


def test_publishing_again_gives_identical_files(dataset: Path, release: Path, tmp_path: Path):
    again = publish(dataset, tmp_path / "again", max_shard_mb=1)
    assert (again / "SHA256SUMS").read_bytes() == (release / "SHA256SUMS").read_bytes()
    for path in release.rglob("*"):
        if path.is_file():
            assert (again / path.relative_to(release)).read_bytes() == path.read_bytes(), path
    publish(dataset, again, max_shard_mb=1)  # over itself: still the same
    assert (again / "SHA256SUMS").read_bytes() == (release / "SHA256SUMS").read_bytes()


def test_croissant_validates_and_reads_the_shards(dataset: Path, release: Path):
    mlc = pytest.importorskip("mlcroissant")
    ds = mlc.Dataset(jsonld=release / "croissant.json")
    assert not ds.metadata.ctx.issues.errors
    doc = json.loads((release / "croissant.json").read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    for entry in doc["distribution"]:
        if entry["@type"] == "cr:FileObject":
            assert hashlib.sha256((release / entry["contentUrl"]).read_bytes()).hexdigest() == entry["sha256"]
    records = list(ds.records("static"))
    assert len(records) == len(list((dataset / "tif").rglob("*.tif")))
    first = records[0]
    name = SampleName.parse(first["static/sample_id"].decode())[0]
    split = first["static/split"].decode()
    png = dataset / str(name.year) / "RGB" / split / name.label / f"{name.with_type('RGB')}.png"
    np.testing.assert_array_equal(np.asarray(first["static/rgb"]), np.asarray(Image.open(png)))
    assert [r["classes/name"] for r in ds.records("classes")] == ["CANOLA", "CORN", "PASTURE"]


def test_stac_catalogue_validates(dataset: Path, release: Path):
    pystac = pytest.importorskip("pystac")
    from pystac.validation import JsonSchemaSTACValidator, set_validator

    validator = JsonSchemaSTACValidator()
    schema = json.loads((Path(__file__).parent / "schemas" / "label-v1.0.0.json").read_text())
    validator.schema_cache["https://stac-extensions.github.io/label/v1.0.0/schema.json"] = schema
    set_validator(validator)
    path = release / "stac" / "collection.json"
    pystac.validation.validate_all_dict(json.loads(path.read_text()), str(path))  # as written
    collection = pystac.Collection.from_file(str(path))
    items = list(collection.get_items())
    point_years = {
        (n.point_id, n.year) for n in (SampleName.parse(t.name)[0] for t in (dataset / "tif").rglob("*.tif"))
    }
    assert {(i.properties["point_id"], i.properties["year"]) for i in items} == point_years
    item = items[0]
    name = SampleName.parse(item.properties["sample_ids"][0])[0]
    with rasterio.open(dataset / "tif" / str(name.year) / name.label / f"{name.stem}.tif") as src:
        left, bottom, right, top = src.bounds
        lons, lats = rasterio.warp.transform(
            src.crs, "EPSG:4326", [left, right, right, left], [bottom, bottom, top, top]
        )
    np.testing.assert_allclose(item.bbox, [min(lons), min(lats), max(lons), max(lats)], atol=1e-6)
    assert item.properties["label:classes"][0]["classes"] == ["CANOLA", "CORN", "PASTURE"]
    static = Path(item.assets["static"].get_absolute_href())
    assert static.exists() and name.stem in pq.read_table(static, columns=["sample_id"])["sample_id"].to_pylist()


def test_datasets_loads_the_same_arrays(dataset: Path, release: Path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_dir=str(release / "data" / "static"), split="test").with_format("numpy")
    assert ds.features["label"].names == ["CANOLA", "CORN", "PASTURE"]
    for row in ds.select(range(3)):
        name = SampleName.parse(str(row["sample_id"]))[0]
        png = dataset / str(name.year) / "NDVI" / "test" / name.label / f"{name.with_type('NDVI')}.png"
        np.testing.assert_array_equal(row["ndvi"], np.asarray(Image.open(png)))
        with rasterio.open(dataset / "tif" / str(name.year) / name.label / f"{name.stem}.tif") as src:
            np.testing.assert_array_equal(row["multispectral"], src.read(list(range(1, 19))))
    rgb = datasets.load_dataset(str(release), "rgb", split="train")
    assert "rgb" in rgb.column_names and "multispectral" not in rgb.column_names
    temporal = datasets.load_dataset(str(release), "temporal", split="validation")
    row = temporal[0]
    assert len(row["rgb"]) == len(row["months"]) == len(row["sample_ids"])
