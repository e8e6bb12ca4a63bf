"""Maps and counts of points: PNG, self-contained HTML (rendered in a real browser)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from cropland.points.maps import class_colors, counts, html_map, plot_map

POINTS = pd.DataFrame({
    "point_id": [1, 2, 3, 4, 4],
    "year": [2019, 2019, 2019, 2019, 2020],
    "lon": [-104.6, -97.1, -73.6, -63.1, -63.1],
    "lat": [50.4, 49.9, 45.5, 46.2, 46.2],
    "province": ["SK", "MB", "QC", "PE", "PE"],
    "aci_code": [146, 153, 147, 177, 158],
    "label": ["SPRING_WHEAT", "CANOLA", "CORN", "POTATO", "SOYBEAN"],
})


def has_colour(image: np.ndarray, hex_colour: str, tol: float = 0.02) -> bool:
    rgb = np.asarray(to_rgb(hex_colour))
    return bool((np.abs(image[..., :3] - rgb).max(axis=-1) < tol).any())


def test_counts_per_class_and_province():
    table = counts(POINTS)
    assert table.loc["POTATO", "PE"] == 1 and table.loc["SOYBEAN", "PE"] == 1
    assert table.loc["total", "total"] == 5 and table.loc["CORN", "total"] == 1


def test_png_map_shows_each_class(tmp_path):
    path = plot_map(POINTS[POINTS["year"] == 2019], tmp_path / "map.png")
    image = imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 500
    colours = class_colors(["SPRING_WHEAT", "CANOLA", "CORN", "POTATO"])
    assert len(set(colours.values())) == 4
    for colour in colours.values():
        assert has_colour(image, colour)
    assert not has_colour(image, "#17becf")  # tab10's 10th colour: no 10th class


def test_html_map_is_self_contained(tmp_path):
    path = html_map(POINTS, tmp_path / "map.html")
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=", text)
    assert r"point 4 (PE)\u003cbr\u003e2019: POTATO, 2020: SOYBEAN" in text  # JSON-escaped <br>
    assert "CANOLA (1)" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_html_map_renders_offline_in_a_browser(tmp_path):
    path = html_map(POINTS, tmp_path / "map.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,700",
         f"--screenshot={shot}", path.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    image = imread(shot)
    for colour in class_colors(POINTS.drop_duplicates("point_id")["label"]).values():
        assert has_colour(image, colour, tol=0.03), colour
