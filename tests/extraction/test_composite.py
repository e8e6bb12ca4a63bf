import numpy as np

from cropland.extraction.composite import median_composite


def test_cloudy_pixel_takes_the_median_of_the_clear_scenes():
    refl = np.zeros((5, 2, 3, 3), np.float32)
    for s, v in enumerate([0.10, 0.30, 0.20, 0.90, 0.40]):
        refl[s] = v
    clear = np.ones((5, 3, 3), bool)
    clear[3, 1, 1] = False  # scene 3 (0.90, a cloud) is masked at the centre pixel only
    median, valid = median_composite(refl, clear)
    assert median[0, 1, 1] == np.float32(np.median([0.10, 0.30, 0.20, 0.40]))  # 0.25
    assert median[0, 0, 0] == np.float32(0.30)  # median of all five elsewhere
    assert valid[1, 1] == 4 and valid[0, 0] == 5


def test_no_clear_observation_gives_nan_and_zero_count():
    refl = np.ones((2, 12, 4, 4), np.float32)
    clear = np.ones((2, 4, 4), bool)
    clear[:, 0, 0] = False
    refl[0, :, 1, 1] = np.nan  # no data in scene 0 at (1, 1): scene 1 alone counts
    median, valid = median_composite(refl, clear)
    assert np.isnan(median[:, 0, 0]).all() and valid[0, 0] == 0
    assert valid[1, 1] == 1 and median[0, 1, 1] == 1.0


def test_no_scene_at_all():
    median, valid = median_composite(np.zeros((0, 12, 4, 4), np.float32), np.zeros((0, 4, 4), bool))
    assert np.isnan(median).all() and (valid == 0).all()
