import pytest

from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.errors import NameFormatError


@pytest.mark.parametrize("image_type", IMAGE_TYPES)
def test_round_trip(image_type):
    sample = SampleName(4971, 2019, 7, "QC", "SPRING_WHEAT")
    name = sample.with_type(image_type)
    assert name == f"POINT_4971_201907_QC_SPRING_WHEAT_{image_type}"
    assert SampleName.parse(name + ".png") == (sample, image_type)


def test_published_examples():
    sample, kind = SampleName.parse("2019/RGB/training/BARLEY/POINT_2_201909_AB_BARLEY_RGB.png")
    assert (sample.point_id, sample.year, sample.month, sample.province, sample.label, kind) == (
        2, 2019, 9, "AB", "BARLEY", "RGB")
    assert SampleName.parse("POINT_2_201909_AB_BARLEY.B8A.tif") == (sample, None)


@pytest.mark.parametrize(
    "bad",
    ["POINT_2_201913_AB_BARLEY_RGB.png",  # month 13
     "POINT_x_201909_AB_BARLEY_RGB.png",  # id not a number
     "POINT_2_2019_AB_BARLEY_RGB.png",  # no month
     "POINT_2_201909_XX_BARLEY_RGB.png",  # unknown province
     "POINT_2_201909_AB_barley_RGB.png",  # lower-case class
     "IMG_2_201909_AB_BARLEY_RGB.png", ""],
)
def test_malformed_names_are_rejected(bad):
    with pytest.raises(NameFormatError):
        SampleName.parse(bad)


def test_error_says_the_expected_form():
    with pytest.raises(NameFormatError, match=r"POINT_\{id\}_\{YYYYMM\}"):
        SampleName.parse("hello.png")


def test_one_id_rule_from_names_to_the_review_app():
    """Every id a sample name may hold is one the review app serves, and no other."""
    import re

    from cropland.core.naming import MAX_POINT_ID

    app_pattern = pytest.importorskip("cropland.curate.app").SAMPLE_ID
    largest = SampleName(MAX_POINT_ID, 2019, 7, "QC", "CORN")
    assert re.fullmatch(app_pattern, largest.stem)
    assert SampleName.parse(largest.stem)[0] == largest
    for bad in (MAX_POINT_ID + 1, -1):
        with pytest.raises(NameFormatError, match="outside 0-999,999,999"):
            SampleName(bad, 2019, 7, "QC", "CORN")
    with pytest.raises(NameFormatError):
        SampleName.parse("POINT_1234567890_201907_QC_CORN.tif")
    assert not re.fullmatch(app_pattern, "POINT_1234567890_201907_QC_CORN")
