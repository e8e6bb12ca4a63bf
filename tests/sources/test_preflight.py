"""`cropland check`: the preflight against the loopback catalogue, and its one-line failures."""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

import cropland.cli
from cropland.config import load_config
from cropland.extraction.preflight import PreflightError, preflight
from cropland.points.table import write_points
from tests.sources.loopback import free_port
from tests.sources.s2_loopback import box_points


def write_config(tmp_path, url: str, points=None, **changes) -> object:
    write_points(box_points(6) if points is None else points, tmp_path / "points.csv")
    config = {"years": [2019], "months": [6, 7], "classes": ["CORN", "SOYBEAN", "OAT", "BARLEY"],
              "points": {"path": "points.csv"}, "output": "out",
              "source": {"kind": "stac", "level": "L2A", "max_scene_cloud": 50,
                         "options": {"catalogue": "earth-search", "url": url,
                                     "collection": "sentinel-2-l2a"}}}
    for key, value in changes.items():
        target = config
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def expected_items(loopback, year: int, month: int, max_cloud: float) -> tuple[int, int]:
    """Items of the month over BOX (every loopback L2A item covers it): kept, total."""
    month_items = [i for k, i in loopback.items.items() if k.startswith("sentinel-2-l2a/")
                   and i["properties"]["datetime"].startswith(f"{year}-{month:02d}")]
    kept = [i for i in month_items if i["properties"]["eo:cloud_cover"] < max_cloud]
    return len(kept), len(month_items)


def test_report_figures(loopback, tmp_path):
    cfg = load_config(write_config(tmp_path, loopback.stac_url))
    served = loopback.cogs.counters.requests, loopback.cogs.counters.bytes
    report = preflight(cfg, workers=2)
    for m in report.months:
        assert (m.kept, m.total) == expected_items(loopback, m.year, m.month, 50)
    assert [(m.year, m.month) for m in report.months] == [(2019, 6), (2019, 7)]
    # GDAL's counts of the five reads (the job's patches three times, one patch twice) are
    # what the range server saw
    assert 2 * report.one_patch.requests + 3 * report.job_read.requests == \
        loopback.cogs.counters.requests - served[0]
    assert 2 * report.one_patch.nbytes + 3 * report.job_read.nbytes == \
        loopback.cogs.counters.bytes - served[1]
    assert 0 < report.one_patch.nbytes <= report.job_read.nbytes
    assert report.job_patches == 6 and len(report.bands) == 12
    assert all(-0.05 < b.p1 <= b.p50 <= b.p99 < 1 for b in report.bands)
    assert report.offset == {"metadata": 0.0, "pixels": 0.0, "used": 0.0}
    e = report.estimate
    mean_kept = sum(m.kept for m in report.months) / 2
    assert (e.jobs, e.samples, e.workers) == (2, 12, 2) and e.scene_reads == 2 * mean_kept
    assert e.seconds > 0 and e.requests > e.scene_reads
    text = "\n".join(report.lines())
    for figure in ("Jun", "Jul", "p50", "B12", "DN offset", "estimate: 12 samples in 2 jobs"):
        assert figure in text


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["cropland", *args])
    try:
        cropland.cli.run()
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_cli_prints_the_report(loopback, tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "check", "--config",
                           str(write_config(tmp_path, loopback.stac_url)))
    assert code == 0
    assert "items per month after the cloud filter" in out and "estimate:" in out


class _Forbidden(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b'{"detail": "forbidden"}'
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def forbidden():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("case, expected", [
    ("closed port", "refused the connection"),
    ("403", "access refused (HTTP 403)"),
    ("unknown collection", "collection 'sentinel-2-l3' not found"),
    ("cloud filter", "the cloud filter removed them all"),
    ("dates", "has items over them at other dates"),
    ("area", "outside its coverage"),
])
def test_failures_are_one_line(loopback, tmp_path, monkeypatch, capsys, forbidden, case, expected):
    url = {"closed port": f"http://127.0.0.1:{free_port()}", "403": forbidden}.get(
        case, loopback.stac_url)
    changes = {"unknown collection": {"source__options__collection": "sentinel-2-l3"},
               "cloud filter": {"source__max_scene_cloud": 0},
               "dates": {"years": [2020]}}.get(case, {})
    points = box_points(3, box=(-80.0, 45.0, -79.9, 45.1)) if case == "area" else None
    if case == "dates":
        points = box_points(6, year=2020)
    started = datetime.now()
    code, out, err = run_cli(monkeypatch, capsys, "check", "--config",
                             str(write_config(tmp_path, url, points, **changes)))
    assert code == 2 and out == ""
    assert err.startswith("error:") and expected in err and "Traceback" not in err
    assert (datetime.now() - started).total_seconds() < 60


def test_library_error_type(loopback, tmp_path):
    cfg = load_config(write_config(tmp_path, loopback.stac_url, source__max_scene_cloud=0))
    with pytest.raises(PreflightError):
        preflight(cfg)



def test_refused_token_is_one_line(loopback, tmp_path, monkeypatch, capsys, forbidden):
    """Planetary Computer signing whose token endpoint answers 403 (an expired or revoked
    token): one line naming the token, exit 2."""
    config = write_config(tmp_path, loopback.stac_url)
    data = yaml.safe_load(config.read_text())
    data["source"]["options"].update(signing="planetary-computer", sas_url=forbidden)
    config.write_text(yaml.safe_dump(data))
    code, out, err = run_cli(monkeypatch, capsys, "check", "--config", str(config))
    assert code == 2 and out == ""
    assert "access refused (HTTP 403)" in err and "token" in err and "Traceback" not in err
