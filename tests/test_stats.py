"""Statistics and dataset card of a small dataset written with the real GeoTIFF writer."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cropland.card import write_card
from cropland.config import BuildConfig, IndicesConfig, dump_config
from cropland.core.composite import Composite
from cropland.core.grid import PatchGrid
from cropland.core.naming import SampleName
from cropland.dataset import Splits, tif_path, write_splits
from cropland.export.geotiff import write_sample
from cropland.stats import count_tables, scan_dataset, write_report

# (point, year, month, province, class, synthetic): point 3 rotates OAT -> CORN.
SAMPLES = [
    (1, 2019, 6, "AB", "BARLEY", True), (1, 2019, 7, "AB", "BARLEY", True),
    (1, 2020, 6, "AB", "BARLEY", True), (2, 2019, 8, "MB", "CANOLA", True),
    (3, 2019, 6, "QC", "OAT", True), (3, 2020, 7, "QC", "CORN", True),
    (3, 2020, 8, "QC", "CORN", True), (3, 2020, 9, "QC", "CORN", True),
    (4, 2020, 9, "QC", "CORN", False),
]
SPLITS = {1: "training", 2: "training", 3: "validation", 4: "test"}
ACI = {"BARLEY": 133, "CANOLA": 153, "OAT": 136, "CORN": 147}


#: Sample index -> (values below 0, values above 1) planted in its reflectance.
ODD_VALUES = {1: (40, 0), 4: (8, 3), 6: (0, 12)}


def _composite(point, year, month, province, label, synthetic, k) -> Composite:
    reflectance = np.full((12, 64, 64), 0.05 + 0.01 * k, np.float32)
    negative, above = ODD_VALUES.get(k, (0, 0))
    reflectance[2, 0, :negative] = -0.02
    reflectance[7, 1, :above] = 1.1
    return Composite(
        sample=SampleName(point, year, month, province, label),
        grid=PatchGrid.around(-100.0 + point, 50.0),
        reflectance=reflectance,
        valid=np.ones((64, 64), np.uint16),
        scenes=[f"SCENE_{year}_{month}_{k % 3}"],
        cloud_fraction=0.1 * (k % 2),
        aci_code=ACI[label],
        synthetic=synthetic,
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stats") / "out"
    for k, spec in enumerate(SAMPLES):
        c = _composite(*spec, k)
        source = {"kind": "simulator" if spec[-1] else "stac", "level": "L2A"}
        write_sample(c, tif_path(root, c.sample), IndicesConfig(), source)
    write_splits(Splits(SPLITS, 4, {"training": 0.7, "validation": 0.15, "test": 0.15}),
                 root / "splits.json")
    cfg = BuildConfig(name="tiny", years=[2019, 2020], points={"synthetic_per_class": 1})
    (root / "config.yaml").write_text(dump_config(cfg))
    return root


@pytest.fixture(scope="module")
def samples(dataset: Path) -> pd.DataFrame:
    return scan_dataset(dataset)


def test_scan_reads_names_splits_and_tags(samples: pd.DataFrame) -> None:
    assert len(samples) == len(SAMPLES)
    row = samples.set_index("name").loc["POINT_4_202009_QC_CORN"]
    assert (row["split"], row["synthetic"], row["aci_code"]) == ("test", "no", "147")
    assert json.loads(row["source"])["kind"] == "stac"


def test_worker_processes_read_the_same_table(dataset: Path, samples: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(scan_dataset(dataset, workers=2), samples)


def test_counts_equal_independent_counts(samples: pd.DataFrame) -> None:
    tables = count_tables(samples)

    def as_dict(table: str, key: str, value: str = "images") -> dict:
        return dict(zip(tables[table][key], tables[table][value], strict=True))

    assert as_dict("class", "class") == dict(Counter(s[4] for s in SAMPLES))
    assert as_dict("class", "class", "points") == {"BARLEY": 1, "CANOLA": 1, "OAT": 1, "CORN": 2}
    assert as_dict("month", "month") == dict(Counter(s[2] for s in SAMPLES))
    assert as_dict("province", "province") == dict(Counter(s[3] for s in SAMPLES))
    assert as_dict("province", "province", "points") == {"AB": 1, "MB": 1, "QC": 2}
    assert as_dict("year", "year") == dict(Counter(s[1] for s in SAMPLES))
    per_point = Counter(s[0] for s in SAMPLES)  # {1: 3, 2: 1, 3: 4, 4: 1}
    assert as_dict("images_per_point", "images", "points") == dict(Counter(per_point.values()))
    by_split = tables["class_by_split"].set_index("class")
    expected = Counter((s[4], SPLITS[s[0]]) for s in SAMPLES)
    for (label, split), n in expected.items():
        assert by_split.loc[label, split] == n
    assert by_split["total"].sum() == len(SAMPLES)
    assert by_split.loc["CORN", "training"] == 0


def test_report_tables_and_charts(dataset: Path, samples: pd.DataFrame) -> None:
    report = write_report(dataset, samples)
    text = report.read_text()
    assert text.startswith("# tiny: dataset statistics")
    assert "- images: 9" in text and "- points: 4" in text
    assert "| CORN | 4 | 2 |" in text  # class table row: images, points
    charts = sorted((dataset / "stats").glob("*.png"))
    assert [c.stem for c in charts] == sorted(
        ["class", "month", "province", "year", "images_per_point", "class_by_split"]
    )
    for chart in charts:
        assert f"](stats/{chart.name})" in text
        with Image.open(chart) as image:
            assert image.format == "PNG" and image.size == (700, 400 if "split" not in
                                                              chart.stem else 450)
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 10  # drawn, not blank
    csv = pd.read_csv(dataset / "stats" / "month.csv")
    assert csv["images"].sum() == len(SAMPLES)


def test_report_shows_reflectance_sanity_per_year(dataset: Path, samples: pd.DataFrame) -> None:
    values = 12 * 64 * 64
    expected = {}
    for year in (2019, 2020):
        ks = [k for k, s in enumerate(SAMPLES) if s[1] == year]
        neg = [ODD_VALUES.get(k, (0, 0))[0] / values for k in ks]
        above = [ODD_VALUES.get(k, (0, 0))[1] / values for k in ks]
        expected[year] = (len(ks), sum(n > 0 for n in neg), np.mean(neg),
                          sum(a > 0 for a in above), np.mean(above))
    text = write_report(dataset, samples).read_text()
    assert "## Reflectance sanity (per year)" in text
    table = pd.read_csv(dataset / "stats" / "reflectance_sanity.csv").set_index("year")
    for year, (n, with_neg, neg, with_above, above) in expected.items():
        row = table.loc[year]
        assert (row["images"], row["with_negative"], row["with_above_one"]) == (n, with_neg, with_above)
        assert row["negative_share"] == pytest.approx(neg, abs=1e-6)
        assert row["above_one_share"] == pytest.approx(above, abs=1e-6)
    assert expected[2019][1] == 2 and expected[2020][3] == 1  # the test plants something


def test_card_composition_provenance_licence(dataset: Path, samples: pd.DataFrame) -> None:
    text = write_card(dataset, samples).read_text()
    assert text.startswith("# Dataset card: tiny")
    assert "9 images of 4 points" in text
    assert "| CORN | 147 | Corn | 4 | 2 |" in text
    assert "**mixed**: 8 synthetic and 1 real images" in text
    assert "Source: simulator, stac" in text
    scenes = {f"SCENE_{s[1]}_{s[2]}_{k % 3}" for k, s in enumerate(SAMPLES)}
    assert f"Scenes: {len(scenes)} distinct scenes" in text
    assert "| NDWI | (B8 - B11) / (B8 + B11)" in text
    assert "| validation | 0.15 | 1 | 4 |" in text
    assert "MIT" in text and "Montreal Data License" in text
    assert "arXiv:2306.00114" in text
    assert "Level-2A: surface reflectance" in text and "The published release is Level-1C" in text
    assert "Level-1C: top-of-atmosphere" not in text  # no L1C sample here


def test_empty_dataset_is_a_clear_error(tmp_path: Path) -> None:
    from cropland.errors import DatasetError

    with pytest.raises(DatasetError, match="no sample GeoTIFF"):
        write_report(tmp_path)


def test_card_of_synthetic_data_says_so(samples: pd.DataFrame) -> None:
    from cropland.card import render_card

    text = render_card("demo", samples[samples["synthetic"] == "yes"], None, None)
    assert "A synthetic multitemporal" in text
    assert "**synthetic** (simulated by cropland" in text
    assert "MIT" in text and "Montreal" not in text and "Copernicus" not in text
    assert "not split" in text


def test_a_foreign_geotiff_is_named(tmp_path: Path) -> None:
    import rasterio

    from cropland.errors import DatasetError

    path = tmp_path / "tif" / "2019" / "OAT" / "POINT_9_201906_SK_OAT.tif"
    path.parent.mkdir(parents=True)
    transform = rasterio.transform.from_origin(0, 40, 10, 10)
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:3978", transform=transform) as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(DatasetError, match="POINT_9_201906_SK_OAT.tif lacks the tags N_SCENES"):
        scan_dataset(tmp_path)
