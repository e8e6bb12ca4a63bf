import numpy as np
import pytest

from cropland.core.bands import BAND_NAMES
from cropland.core.indices import INDEX_NAMES, compute_index, compute_indices

# One pixel with hand-picked reflectances.
PIXEL = {"B2": 0.05, "B3": 0.08, "B4": 0.04, "B5": 0.12, "B6": 0.30, "B7": 0.38, "B8": 0.44,
         "B11": 0.20}


def _bands(**over):
    values = {b: 0.1 for b in BAND_NAMES} | PIXEL | over
    return {b: np.array([v], dtype=np.float32) for b, v in values.items()}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NDVI", (0.44 - 0.04) / (0.44 + 0.04)),
        ("NDVI45", (0.12 - 0.04) / (0.12 + 0.04)),
        ("GNDVI", (0.44 - 0.08) / (0.44 + 0.08)),
        ("PSRI", (0.04 - 0.05) / 0.30),
        ("OSAVI", (0.44 - 0.04) / (0.44 + 0.04 + 0.16)),
        ("NDWI", (0.44 - 0.20) / (0.44 + 0.20)),
    ],
)
def test_documented_formulas(name, expected):
    assert compute_index(name, _bands())[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NDVI", (0.38 - 0.04) / (0.38 + 0.04)),  # the original script used B7
        ("GNDVI", (0.38 - 0.08) / (0.38 + 0.08)),
        ("OSAVI", 1.16 * (0.44 - 0.04) / (0.44 + 0.04 + 0.61)),  # and 0.61 for 0.16
    ],
)
def test_original_variants(name, expected):
    assert compute_index(name, _bands(), variant="original")[0] == pytest.approx(expected, rel=1e-6)


def test_ndwi_mcfeeters():
    value = compute_index("NDWI", _bands(), ndwi="mcfeeters")[0]
    assert value == pytest.approx((0.08 - 0.44) / (0.08 + 0.44), rel=1e-6)


def test_zero_denominators_give_nan_not_errors():
    bands = _bands(B4=0.0, B8=0.0, B6=0.0)
    with np.errstate(all="raise"):
        assert np.isnan(compute_index("NDVI", bands)[0])  # 0 / 0
        assert np.isnan(compute_index("PSRI", bands)[0])  # x / 0
    assert compute_index("OSAVI", bands)[0] == 0.0  # denominator 0.16 is not zero


def test_stack_order_and_shape():
    stack = np.random.default_rng(0).uniform(0.01, 0.5, (12, 4, 5)).astype(np.float32)
    out = compute_indices(stack)
    assert out.shape == (6, 4, 5) and out.dtype == np.float32
    b = dict(zip(BAND_NAMES, stack, strict=True))
    np.testing.assert_allclose(out[INDEX_NAMES.index("NDVI")], (b["B8"] - b["B4"]) / (b["B8"] + b["B4"]), rtol=1e-6)


def test_unknown_index():
    with pytest.raises(KeyError, match="unknown index"):
        compute_index("EVI", _bands())
