"""The whole build on simulated scenes, checked as a user would open its outputs."""

import json
import re
import zipfile

import numpy as np
import pytest
import rasterio
from PIL import Image

from cropland.config import parse_config
from cropland.core.bands import BAND_NAMES
from cropland.core.indices import INDEX_NAMES
from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.pipeline import build_dataset


@pytest.fixture(scope="module", params=[64, 65])
def built(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"build{request.param}")
    cfg = parse_config({
        "years": [2019, 2020], "months": [7, 8], "classes": ["CANOLA", "CORN", "PASTURE"],
        "points": {"synthetic_per_class": 3, "synthetic_clusters": 2},
        "patch_size": request.param, "output": str(out), "seed": 5,
    })
    result = build_dataset(cfg, progress=False)
    return cfg, result


def test_sample_geotiffs(built):
    cfg, result = built
    tifs = sorted((result.output / "tif").rglob("*.tif"))
    assert len(tifs) == result.extraction.counts["done"] > 0
    with rasterio.open(tifs[0]) as ds:
        assert ds.crs.to_epsg() == 3978
        assert (ds.width, ds.height) == (cfg.patch_size, cfg.patch_size)
        assert ds.res == (10.0, 10.0)
        assert ds.descriptions == (*BAND_NAMES, *INDEX_NAMES, "VALID")
        assert ds.dtypes[0] == "float32" and ds.tags()["SYNTHETIC"] == "yes"
        sample, _ = SampleName.parse(tifs[0].name)
        assert int(ds.tags()["POINT_ID"]) == sample.point_id
        data = ds.read()
    red, nir = data[BAND_NAMES.index("B4")], data[BAND_NAMES.index("B8")]
    np.testing.assert_allclose(data[12], (nir - red) / (nir + red), rtol=1e-5)  # NDVI
    assert 0 < np.nanmean(red) < 0.3 and data[-1].max() >= 1


def test_png_release_tree(built):
    cfg, result = built
    splits = json.loads((result.output / "splits.json").read_text())["assignments"]
    n = result.extraction.counts["done"]
    for image_type in IMAGE_TYPES:
        pngs = sorted(result.output.glob(f"20*/{image_type}/*/*/*.png"))
        assert len(pngs) == n, image_type
        for png in pngs[:3]:
            year, kind, split, label, name = png.relative_to(result.output).parts
            sample, parsed_type = SampleName.parse(name)
            assert (kind, label, int(year)) == (parsed_type, sample.label, sample.year)
            assert splits[str(sample.point_id)] == split
            image = Image.open(png)
            assert image.size == (cfg.patch_size, cfg.patch_size) and image.mode == "RGB"


def test_no_point_in_two_splits(built):
    _, result = built
    where: dict[int, set[str]] = {}
    for png in result.output.glob("20*/*/*/*/*.png"):
        sample, _ = SampleName.parse(png.name)
        where.setdefault(sample.point_id, set()).add(png.parts[-3])
    assert where and all(len(s) == 1 for s in where.values())


def test_raw_zip_report_and_card(built):
    _, result = built
    zips = sorted((result.output / "raw").rglob("*.zip"))
    assert len(zips) == result.extraction.counts["done"]
    names = zipfile.ZipFile(zips[0]).namelist()
    stem = zips[0].stem
    assert f"{stem}.B1.tif" in names and f"{stem}.B8A.tif" in names and f"{stem}.NDWI.tif" in names
    report = result.report.read_text()
    charts = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert charts and all((result.output / c).exists() for c in charts)
    assert "synthetic" in (result.output / "dataset_card.md").read_text().lower()


def _small(out, **changes):
    return parse_config({"months": [7], "classes": ["CANOLA", "CORN"], "output": str(out), "seed": 2,
                         "points": {"synthetic_per_class": 3, "synthetic_clusters": 1}, **changes})


def _tif_years(out):
    return sorted(SampleName.parse(p.name)[0].year for p in (out / "tif").rglob("*.tif"))


def test_a_rerun_with_an_added_year_builds_it(tmp_path):
    """Synthetic points: the added year's samples are built; known points keep their splits."""
    build_dataset(_small(tmp_path, years=[2019]), progress=False)
    before = json.loads((tmp_path / "splits.json").read_text())["assignments"]
    result = build_dataset(_small(tmp_path, years=[2019, 2020]), progress=False)
    assert _tif_years(tmp_path) == [2019] * 6 + [2020] * 6
    assert result.extraction.complete
    assert json.loads((tmp_path / "splits.json").read_text())["assignments"] == before
    assert len(list(tmp_path.glob("2020/RGB/*/*/*.png"))) == 6


def test_points_new_in_an_added_year_get_their_own_splits(tmp_path):
    from cropland.points.table import write_points
    from cropland.sources import make_source

    points = make_source(_small(tmp_path / "x", years=[2019])).synthetic_points(4, [2019, 2020], 1)
    late = points["point_id"] > points["point_id"].max() - 2  # two points only in 2020
    table = write_points(points[~(late & (points["year"] == 2019))], tmp_path / "points.csv")
    out = tmp_path / "out"
    build_dataset(_small(out, years=[2019], points={"path": str(table)}), progress=False)
    before = json.loads((out / "splits.json").read_text())["assignments"]
    build_dataset(_small(out, years=[2019, 2020], points={"path": str(table)}), progress=False)
    after = json.loads((out / "splits.json").read_text())["assignments"]
    assert {p: s for p, s in after.items() if p in before} == before
    assert sorted(set(after) - set(before)) == sorted(str(p) for p in points.loc[late, "point_id"].unique())
    assert _tif_years(out).count(2020) == 8


def test_a_rerun_may_not_change_what_the_files_were_made_with(tmp_path):
    from cropland.errors import ConfigError

    build_dataset(_small(tmp_path, years=[2019]), progress=False)
    with pytest.raises(ConfigError, match=r"patch_size: 64 -> 65; render.*restore them or build into a new"):
        build_dataset(_small(tmp_path, years=[2019], patch_size=65, render={"rgb_max": 0.5}), progress=False)
    assert "patch_size: 64" in (tmp_path / "config.yaml").read_text()  # the saved config still tells the truth
    build_dataset(_small(tmp_path, years=[2019], months=[7, 8]), progress=False)  # more months: fine
    assert len(list((tmp_path / "tif").rglob("*.tif"))) == 12


@pytest.mark.parametrize(("fewer", "dropped"), [
    ({"months": [8]}, "months [7]"),
    ({"months": [7, 8], "classes": ["CORN"]}, "classes ['CANOLA']"),
    ({"months": [7], "classes": ["CANOLA"]}, "months [8], classes ['CORN']"),
])
def test_a_rerun_may_not_drop_what_the_folder_holds(tmp_path, fewer, dropped):
    """The saved config keeps saying what the folder holds: a rerun with fewer months or classes
    is refused (its samples would stay, under a config that no longer lists them)."""
    from cropland.errors import ConfigError

    build_dataset(_small(tmp_path, years=[2019], months=[7, 8]), progress=False)
    saved = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=re.escape(f"holds samples of {dropped}, which the config no longer lists")):
        build_dataset(_small(tmp_path, years=[2019], **fewer), progress=False)
    assert (tmp_path / "config.yaml").read_text() == saved


def test_a_build_keeps_user_files_and_removes_only_its_own_leftovers(tmp_path):
    from cropland.io import TEMP_SUFFIX

    mine = {"notes.tmp": "todo", ".notes.tmp": "editor swap", "tif/.plan.tmp": "x"}
    for name, text in mine.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    leftover = tmp_path / f".demo-curated{TEMP_SUFFIX}" / "tif"  # a killed `export --curated`
    leftover.mkdir(parents=True)
    (leftover / "a.tif").write_bytes(b"partial")
    (tmp_path / "tif" / f".POINT_1_201907_SK_CANOLA.tif.x1{TEMP_SUFFIX}").write_bytes(b"partial")
    build_dataset(_small(tmp_path, years=[2019]), progress=False)
    assert {name: (tmp_path / name).read_text() for name in mine} == mine
    assert not list(tmp_path.rglob(f"*{TEMP_SUFFIX}"))


def test_two_identical_builds_give_byte_identical_files(tmp_path):
    """Every file of two builds of one config into two folders is the same, byte for byte: GeoTIFFs,
    PNGs, raw zips (no timestamps), points, splits, config, statistics, report and card. Only the
    manifest (when each task ran) and the lock file (who held the folder) are bookkeeping."""
    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name not in ("manifest.sqlite", ".cropland.lock")}

    first, second = (build_dataset(_small(tmp_path / name, years=[2019]), progress=False).output
                     for name in ("one", "two"))
    a, b = files(first), files(second)
    assert sorted(a) == sorted(b) and len([n for n in a if n.endswith(".zip")]) == 6
    assert [name for name in a if a[name] != b[name]] == []
