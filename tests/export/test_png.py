"""PNG rendering (clipped, never wrapped) and the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cropland.config import IndicesConfig, RenderConfig
from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.dataset import png_path
from cropland.export.geotiff import read_sample, write_sample
from cropland.export.png import render_index, render_rgb, to_uint8, write_pngs
from cropland.io import TEMP_SUFFIX
from tests.export.export_fakes import SOURCE, make_composite


def test_to_uint8_clips_instead_of_wrapping() -> None:
    values = np.array([-5.0, -0.01, 0.0, 0.5, 1.0, 1.01, 7.0, np.nan, np.inf, -np.inf])
    out = to_uint8(values, 0.0, 1.0)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 0, 128, 255, 255, 255, 0, 255, 0]
    # The original conversion, uint8(value * 255), wraps: 1.01 -> 1, -0.01 -> 253 or so.
    assert np.array([1.01 * 255]).astype(np.int64).astype(np.uint8)[0] == 1


def test_rgb_scaling_and_channel_order() -> None:
    rgb = np.stack([np.full((2, 2), v, np.float32) for v in (0.15, 0.3, 0.9)])  # R G B
    out = render_rgb(rgb, rgb_max=0.3)
    assert out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [128, 255, 255]  # 0.15 * 255 / 0.3 = 127.5 -> 128; clipped


def test_index_range_maps_to_grey_in_three_channels() -> None:
    index = np.array([[-1.0, 0.0], [1.0, -3.0]], np.float32)
    out = render_index(index, (-1.0, 1.0))
    assert out.shape == (2, 2, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[..., 0].tolist() == [[0, 128], [255, 0]]


def test_write_pngs_published_layout_and_values(tmp_path: Path, sample_tif: Path) -> None:
    root = tmp_path / "release"
    render = RenderConfig()
    paths = write_pngs(sample_tif, root, "validation", render)
    sample = SampleName(2, 2019, 9, "AB", "BARLEY")
    assert paths == [png_path(root, sample, t, "validation") for t in IMAGE_TYPES]
    assert paths[0] == root / "2019/RGB/validation/BARLEY/POINT_2_201909_AB_BARLEY_RGB.png"
    assert paths[-1] == root / "2019/NDWI/validation/BARLEY/POINT_2_201909_AB_BARLEY_NDWI.png"

    data, _ = read_sample(sample_tif)
    rgb = np.asarray(Image.open(paths[0]))
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    expected_red = np.clip(np.rint(np.nan_to_num(data[3].astype(np.float64) / 0.3 * 255)), 0, 255)
    np.testing.assert_array_equal(rgb[..., 0], expected_red)
    assert (rgb[5:7, 10:13] == 0).all()  # no observation renders black
    assert (rgb == 255).any()  # bright pixels (> 0.3) saturate rather than wrap

    ndvi = np.asarray(Image.open(paths[1]))
    b4, b8 = data[3].astype(np.float64), data[7].astype(np.float64)
    expected = np.clip(np.rint(np.nan_to_num(((b8 - b4) / (b8 + b4) + 1) / 2 * 255)), 0, 255)
    np.testing.assert_allclose(ndvi[..., 1], expected, atol=1)  # float32 vs float64 rounding


def test_write_pngs_subset_and_bad_split(tmp_path: Path, sample_tif: Path) -> None:
    paths = write_pngs(sample_tif, tmp_path, "test", RenderConfig(), ["PSRI"])
    assert [p.name for p in paths] == ["POINT_2_201909_AB_BARLEY_PSRI.png"]
    assert not any(p.name.endswith(TEMP_SUFFIX) for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="unknown split"):
        write_pngs(sample_tif, tmp_path, "train", RenderConfig())


def test_65_pixel_patches_give_65_pixel_pngs(tmp_path: Path) -> None:
    composite = make_composite(size=65)
    tif = write_sample(composite, tmp_path / f"{composite.sample.stem}.tif", IndicesConfig(),
                       SOURCE)
    for path in write_pngs(tif, tmp_path, "training", RenderConfig()):
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((65, 65), "RGB")
