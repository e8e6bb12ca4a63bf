"""The synthetic release: a valid dataset folder of exactly the images asked for, fast."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cropland.core.naming import SampleName
from cropland.dataset import DatasetFolder
from cropland.points.table import read_points
from cropland.synthetic import write_synthetic_release

IMAGES = 240


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "release"
    summary = write_synthetic_release(out, IMAGES, patch_size=16, workers=1, progress=False)
    assert (summary.images, summary.written) == (IMAGES, IMAGES)
    return out


def _digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "tif").rglob("*.tif")}


def test_exactly_the_images_asked_for_in_the_published_shape(release):
    samples = [name for name, _ in DatasetFolder(release).samples()]
    assert len(samples) == IMAGES
    points = {s.point_id for s in samples}
    assert len(points) == round(IMAGES * 6633 / 78536)  # the published images per point
    assert {s.year for s in samples} == {2017, 2018, 2019, 2020}
    assert {s.month for s in samples} == {6, 7, 8, 9, 10}
    per_class = Counter(s.label for s in samples)
    assert len(per_class) == 10 and min(per_class.values()) >= IMAGES / 10 / 2


def test_points_table_labels_and_splits_agree_with_the_files(release):
    folder = DatasetFolder(release)
    points = read_points(folder.points_path)
    label = points.set_index(["point_id", "year"])["label"]
    province = points.groupby("point_id")["province"].first()
    splits = folder.splits()
    for name, _ in folder.samples():
        assert label[(name.point_id, name.year)] == name.label
        assert province[name.point_id] == name.province
        assert splits.split_of(name.point_id) in ("training", "validation", "test")
    assert set(splits.assignments) == set(points["point_id"])
    cfg = folder.config()
    assert (cfg.patch_size, cfg.years, cfg.source.kind) == (16, [2017, 2018, 2019, 2020],
                                                            "synthetic-release")


def test_points_never_overlap(release):
    from pyproj import Transformer

    points = read_points(DatasetFolder(release).points_path).drop_duplicates("point_id")
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3978", always_xy=True).transform(
        points["lon"].to_numpy(), points["lat"].to_numpy())
    xy = np.stack([x, y], 1)
    gaps = np.abs(xy[:, None] - xy[None]).max(axis=2) + np.eye(len(xy)) * 1e9
    assert gaps.min() > 640  # 64 x 10 m patches: Chebyshev distance above a patch width


def test_geotiffs_are_the_documented_format_and_tagged_synthetic(release):
    name, path = next(iter(DatasetFolder(release).samples()))
    with rasterio.open(path) as src:
        assert src.count == 19 and (src.width, src.height) == (16, 16)
        assert src.descriptions[:4] == ("B1", "B2", "B3", "B4") and src.descriptions[-1] == "VALID"
        assert src.crs.to_epsg() == 3978 and src.dtypes[0] == "float32"
        tags = src.tags()
        data = src.read()
    assert tags["SYNTHETIC"] == "yes" and tags["LABEL"] == name.label
    assert int(tags["POINT_ID"]) == name.point_id and int(tags["MONTH"]) == name.month
    reflectance = data[:12][np.isfinite(data[:12])]
    assert 0 < reflectance.min() and reflectance.max() < 1
    np.testing.assert_allclose(reflectance * 10_000, np.round(reflectance * 10_000), atol=2e-3)
    b4, b8 = data[3].astype(np.float64), data[7].astype(np.float64)
    np.testing.assert_allclose(data[12], (b8 - b4) / (b8 + b4), rtol=1e-5, atol=1e-6)  # NDVI


def test_classes_differ_in_their_spectra(release):
    """Each class's mean July NDVI is its own: a classifier has something to learn."""
    ndvi: dict[str, list[float]] = {}
    for name, path in DatasetFolder(release).samples():
        if name.month == 7:
            with rasterio.open(path) as src:
                ndvi.setdefault(name.label, []).append(float(np.nanmedian(src.read(13))))
    means = sorted(np.mean(v) for v in ndvi.values())
    assert means[-1] - means[0] > 0.3


def test_same_files_with_two_workers_and_a_resumed_run(release, tmp_path):
    other = tmp_path / "again"
    write_synthetic_release(other, IMAGES, patch_size=16, workers=2, progress=False)
    assert _digests(other) == _digests(release)
    victim = next((other / "tif").rglob("*.tif"))
    victim.unlink()
    summary = write_synthetic_release(other, IMAGES, patch_size=16, workers=1, progress=False)
    assert summary.written == 1
    assert _digests(other) == _digests(release)


def test_sample_names_parse(release):
    for path in (release / "tif").rglob("*.tif"):
        SampleName.parse(path.name)
