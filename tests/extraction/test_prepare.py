"""What a build says about its inputs before extracting anything."""

from __future__ import annotations

import pandas as pd

from cropland.config import parse_config
from cropland.extraction.runner import prepare
from cropland.points.table import write_points


def test_points_outside_canada_and_invented_years_are_warned_about(tmp_path, caplog):
    table = pd.DataFrame({"point_id": [1, 2, 3], "year": 2099, "lon": [-106.4, 2.35, 0.0],
                          "lat": [52.3, 48.85, -90.0], "province": ["SK", "SK", "SK"],
                          "aci_code": 146})
    cfg = parse_config({"years": [2099], "points": {"path": str(write_points(table, tmp_path / "p.csv"))},
                        "output": str(tmp_path / "out")})
    with caplog.at_level("WARNING"):
        prepare(cfg)
    assert ("2 points lie outside Canada's provinces: 2 at (2.3500, 48.8500), 3 at (0.0000, -90.0000)"
            in caplog.text)
    assert "years [2099] are in the future: the simulator invents their imagery" in caplog.text
