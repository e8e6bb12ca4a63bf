"""`cropland publish --push` against a fake Hub on loopback (HF_ENDPOINT), as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.publish.fakehub import FakeHub

pytest.importorskip("huggingface_hub")


def test_push_sends_every_file_of_the_release(release: Path, tmp_path: Path):
    hub = FakeHub(tmp_path / "hub", token="hf_test")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test", "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(tmp_path / "hf-home"), "COLUMNS": "400"}
    try:
        done = subprocess.run([sys.executable, "-m", "cropland.cli", "publish", str(release), "--push", "alice/crops"],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert f"{hub.url}/datasets/alice/crops/commit/" in done.stdout + done.stderr
        sent = {
            p.relative_to(hub.root / "alice/crops").as_posix()
            for p in (hub.root / "alice/crops").rglob("*")
            if p.is_file()
        }
        files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
        assert sent == files
        for path in files:
            assert (hub.root / "alice/crops" / path).read_bytes() == (release / path).read_bytes()
        assert hub.repos["alice/crops"]["type"] == "dataset"
        assert hub.cards and hub.cards[0]["configs"][0]["config_name"] == "default"
        assert {auth for method, _, auth in hub.requests if method == "POST"} == {"Bearer hf_test"}
        puts = [path for method, path, _ in hub.requests if method == "PUT"]
        assert len(puts) == len(list(release.rglob("*.parquet")))  # shards through LFS, the rest inline

        no_token = {k: v for k, v in env.items() if k != "HF_TOKEN"}
        bad = subprocess.run([sys.executable, "-m", "cropland.cli", "publish", str(release), "--push", "alice/crops"],
                             capture_output=True, text=True, env=no_token)
        assert bad.returncode == 2 and "set HF_TOKEN" in bad.stderr
    finally:
        hub.stop()
