import csv
from pathlib import Path

import pytest

from cropland.core.classes import PUBLISHED_CLASSES, get_class, legend
from cropland.errors import UnknownClassError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "aci_crop_classes.csv"


def test_published_codes():
    codes = {name: get_class(name).code for name in PUBLISHED_CLASSES}
    assert codes == {"BARLEY": 133, "CANOLA": 153, "CORN": 147, "MIXEDWOOD": 230, "OAT": 136,
                     "ORCHARD": 188, "PASTURE": 122, "POTATO": 177, "SOYBEAN": 158,
                     "SPRING_WHEAT": 146}


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not beside this checkout")
def test_legend_matches_the_public_aci_legend():
    with SHARED.open(encoding="utf-8") as f:
        rows = {int(r["Code"]): r for r in csv.DictReader(f)}
    assert set(rows) == set(legend())
    for code, row in rows.items():
        assert legend()[code].label == row["Label"]
        assert legend()[code].color == (int(row["Red\\Rouge"]), int(row["Green\\Vert"]), int(row["Blue\\Bleu"]))


def test_lookup_by_code_and_errors():
    assert get_class(135).name == "MILLET" and get_class("142").name == "SORGHUM"
    with pytest.raises(UnknownClassError, match="unknown ACI code 999"):
        get_class(999)
    with pytest.raises(UnknownClassError, match="published classes: BARLEY"):
        get_class("banana")
