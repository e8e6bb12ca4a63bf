"""Careless and hostile input on the command line: for every case, exit status 2, one line on
stderr that names the problem and the fix, no traceback, and nothing written or lost."""

from __future__ import annotations

import hashlib
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import cropland.cli

GOOD_POINTS = "point_id,year,lon,lat,province,aci_code\n1,2019,-106.4,52.3,SK,147\n"
BUILD = {"years": [2019], "months": [7], "classes": ["CANOLA", "CORN", "BARLEY"],
         "points": {"synthetic_per_class": 10, "synthetic_clusters": 1}, "seed": 3}


def _config(**changes) -> str:
    return yaml.safe_dump(BUILD | changes)


def _plain_geotiff() -> bytes:
    """A GeoTIFF that is not a sample: one band, no band names."""
    import numpy as np
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs="EPSG:3978",
                      transform=from_origin(0, 40, 10, 10)) as dst:
            dst.write(np.zeros((1, 4, 4), np.uint8))
        return mem.read()


def _points_config(table: str | bytes) -> dict[str, str | bytes]:
    return {"points.csv": table, "c.yaml": _config(points={"path": "points.csv"})}


@dataclass
class Case:
    """Files written in a fresh folder, the command run there, and what its error must say."""

    id: str
    argv: list[str]
    says: list[str]  # the problem, then the fix (substrings of the one line)
    files: dict[str, str | bytes] = field(default_factory=dict)


CASES = [
    # the build configuration (item 10, 11)
    Case("config-not-utf8", ["build", "--config", "c.yaml"], ["c.yaml is not UTF-8 text", "save it as UTF-8"],
         {"c.yaml": "years: [2019]\nname: caf\xe9\n".encode("latin-1")}),
    Case("config-bad-yaml", ["build", "--config", "c.yaml"], ["is not valid YAML at line 2", "fix it"],
         {"c.yaml": "years: [2019\n"}),
    Case("config-a-list", ["build", "--config", "c.yaml"], ["must hold a mapping of fields", "see"],
         {"c.yaml": "- 1\n- 2\n"}),
    Case("config-missing", ["build", "--config", "nope.yaml"], ["nope.yaml does not exist", "check the path"]),
    Case("config-a-folder", ["build", "--config", "."], ["is a folder", "give a YAML file"]),
    Case("out-a-file", ["build", "--config", "c.yaml", "--out", "c.yaml"], ["c.yaml is a file", "give a folder"],
         {"c.yaml": _config()}),
    Case("classes-empty", ["build", "--config", "c.yaml"], ["classes: List should have at least 1 item", "list at least one"],
         {"c.yaml": _config(classes=[])}),
    Case("months-empty", ["build", "--config", "c.yaml"], ["months: List should have at least 1 item", "list at least one"],
         {"c.yaml": _config(months=[])}),
    Case("seed-huge", ["build", "--config", "c.yaml"], ["seed: Input should be less than 4294967296"],
         {"c.yaml": _config(seed=10**30)}),
    Case("resolution-inf", ["build", "--config", "c.yaml"], ["resolution: Input should be a finite number"],
         {"c.yaml": _config().replace("seed: 3", "seed: 3\nresolution: .inf")}),
    Case("resolution-huge", ["build", "--config", "c.yaml"], ["resolution: Input should be less than or equal to 1000"],
         {"c.yaml": _config(resolution=1e9)}),
    Case("patch-size-huge", ["build", "--config", "c.yaml"], ["patch_size: Input should be less than or equal to 1024"],
         {"c.yaml": _config(patch_size=100_000)}),
    Case("synthetic-huge", ["build", "--config", "c.yaml"], ["points.synthetic_per_class: Input should be less than or equal to 10000"],
         {"c.yaml": _config(points={"synthetic_per_class": 10**9})}),
    Case("future-years-real-source", ["build", "--config", "c.yaml"], ["years: [2099, 2100] are in the future", "remove them"],
         {"c.yaml": _config(years=[2099, 2100], source={"kind": "stac"})}),
    Case("years-before-sentinel", ["build", "--config", "c.yaml"], ["Sentinel-2 years start in 2015; got [2014]"],
         {"c.yaml": _config(years=[2014])}),
    Case("field-typo", ["build", "--config", "c.yaml"], ["pach_size: unknown field", "did you mean patch_size?"],
         {"c.yaml": _config(pach_size=32)}),
    Case("field-wrong-type", ["build", "--config", "c.yaml"], ["patch_size: Input should be a valid integer", "(got 'big')"],
         {"c.yaml": _config(patch_size="big")}),
    Case("unknown-source", ["build", "--config", "c.yaml"], ["source.kind: unknown source 'nope'", "use one of"],
         {"c.yaml": _config(source={"kind": "nope"})}),
    # the points table (item 5, 9, 10)
    Case("points-missing", ["build", "--config", "c.yaml"], ["points.csv does not exist", "fix the path"],
         {"c.yaml": _config(points={"path": "points.csv"})}),
    Case("points-empty", ["build", "--config", "c.yaml"], ["points.csv is empty", "expected a CSV with the columns"],
         _points_config("")),
    Case("points-header-only", ["build", "--config", "c.yaml"], ["points.csv holds no points", "add one row per point and year"],
         _points_config(GOOD_POINTS.splitlines()[0] + "\n")),
    Case("points-ragged", ["build", "--config", "c.yaml"], ["points.csv is not a well-formed CSV", "Expected 6 fields in line 3, saw 8"],
         _points_config(GOOD_POINTS + "2,2019,-97.7,49.6,MB,146,7,8\n")),
    Case("points-binary", ["build", "--config", "c.yaml"], ["points.csv is a binary file, not a CSV", "expected a CSV"],
         _points_config(bytes(range(256)) * 8)),
    Case("points-not-utf8", ["build", "--config", "c.yaml"], ["points.csv is not UTF-8 text", "save it as UTF-8"],
         _points_config((GOOD_POINTS + "2,2019,-97.7,49.6,MB,Bl\xe9\n").encode("latin-1"))),
    Case("point-id-fraction", ["build", "--config", "c.yaml"], ["point_id must be a whole number in every row", "[4.5]"],
         _points_config(GOOD_POINTS + "4.5,2019,-97.7,49.6,MB,146\n")),
    Case("point-id-ten-digits", ["build", "--config", "c.yaml"], ["point ids outside 0-999999999", "renumber them"],
         _points_config(GOOD_POINTS + "1234567890,2019,-97.7,49.6,MB,146\n")),
    Case("point-id-negative", ["build", "--config", "c.yaml"], ["point ids outside 0-999999999", "renumber them"],
         _points_config(GOOD_POINTS + "-5,2019,-97.7,49.6,MB,146\n")),
    Case("point-impossible-place", ["build", "--config", "c.yaml"], ["impossible coordinates in rows [1]"],
         _points_config(GOOD_POINTS + "2,2019,-97.7,149.6,MB,146\n")),
    Case("point-unknown-class", ["build", "--config", "c.yaml"], ["unknown ACI code 9999", "see `cropland classes`"],
         _points_config(GOOD_POINTS + "2,2019,-97.7,49.6,MB,9999\n")),
    # other commands on a built dataset ({ds}) and a trained run ({run})
    Case("export-not-a-dataset", ["export", "."], ["config.yaml does not exist", "a dataset built by cropland"]),
    Case("stats-foreign-geotiff", ["stats", "{copy}"], ["is not a cropland sample GeoTIFF"],
         {"{copy}/tif/2019/CORN/POINT_999_201907_SK_CORN.tif": _plain_geotiff()}),
    Case("stats-foreign-name", ["stats", "{copy}"], ["notes.tif", "is not a sample name"],
         {"{copy}/tif/2019/CORN/notes.tif": _plain_geotiff()}),
    Case("predict-missing-file", ["predict", "{run}", "nope.tif"], ["nope.tif does not exist", "give sample files"]),
    Case("predict-corrupt-geotiff", ["predict", "{run}", "POINT_1_201907_SK_CORN.tif"],
         ["POINT_1_201907_SK_CORN.tif is corrupt or incomplete"], {"POINT_1_201907_SK_CORN.tif": b"II*\0" + bytes(100)}),
    Case("predict-negative-point", ["predict", "{run}", "--dataset", "{ds}", "--point", "-5", "--year", "2019"],
         ["point: Input should be greater than or equal to 0"]),
    Case("predict-bad-device", ["predict", "{run}", "x.tif", "--device", "gpu"], ["device: use auto, cpu, mps, cuda or cuda:N, not"]),
    Case("train-epochs-0", ["train", "--dataset", "{ds}", "--epochs", "0"], ["epochs: Input should be greater than or equal to 1 (got 0)"]),
    Case("train-config-typo", ["train", "--dataset", "{ds}", "--config", "t.yaml"], ["t.yaml: epochz: unknown field", "did you mean epochs?"],
         {"t.yaml": "epochz: 3\n"}),
    Case("train-config-wrong-type", ["train", "--dataset", "{ds}", "--config", "t.yaml"], ["t.yaml: epochs: Input should be a valid integer", "(got 'many')"],
         {"t.yaml": "epochs: many\n"}),
    Case("train-config-missing", ["train", "--dataset", "{ds}", "--config", "t.yaml"], ["t.yaml does not exist", "check the path"]),
    Case("train-batch-negative", ["train", "--dataset", "{ds}", "--batch-size", "-1"], ["batch_size: Input should be greater than or equal to 1"]),
    Case("train-device", ["train", "--dataset", "{ds}", "--device", "nonsense"], ["device: use auto, cpu, mps, cuda or cuda:N, not"]),
    Case("train-no-cuda", ["train", "--dataset", "{ds}", "--device", "cuda:7"], ["device cuda:7", "use --device auto or cpu"]),
    Case("train-lr-text", ["train", "--dataset", "{ds}", "--lr", "fast"], ["Invalid value for '--lr'", "--help"]),
    Case("train-no-dataset", ["train"], ["dataset: required, add it"]),
    Case("train-unknown-option", ["train", "--dataset", "{ds}", "--epochz", "3"], ["No such option: --epochz", "--help"]),
    Case("train-unknown-model", ["train", "--dataset", "{ds}", "--model", "resnet5"], ["unknown model 'resnet5'", "choose one of"]),
    Case("train-size-huge", ["train", "--dataset", "{ds}", "--size", "100000"], ["size: Input should be less than or equal to 1024"]),
    Case("evaluate-split", ["evaluate", "{run}", "--split", "train"], ["split: Input should be 'training', 'validation' or 'test'"]),
    Case("evaluate-not-a-run", ["evaluate", "{ds}"], ["has no config.yaml", "give a run folder"]),
    Case("benchmark-seeds", ["benchmark", "--dataset", "{ds}", "--seeds", "a,b"], ["seeds.0: Input should be a valid integer"]),
    Case("benchmark-profile", ["benchmark", "--dataset", "{ds}", "--profile", "gpu"], ["profile: Input should be 'auto', 'cpu' or 'cuda'"]),
    Case("curate-port-negative", ["curate", "{ds}", "--port", "-1"], ["Invalid value for '--port'", "--help"]),
    Case("curate-port-huge", ["curate", "{ds}", "--port", "70000"], ["Invalid value for '--port'", "--help"]),
    Case("export-workers-text", ["export", "{ds}", "--workers", "many"], ["Invalid value for '--workers'", "--help"]),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``, with a digest of each file's bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if p.name != ".cropland.lock"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A built dataset ``ds`` and a one-epoch run ``run`` trained on it."""
    from cropland.config import parse_config
    from cropland.pipeline import build_dataset
    from cropland.train.config import TrainConfig
    from cropland.train.loop import train

    root = tmp_path_factory.mktemp("workspace")
    build_dataset(parse_config(BUILD | {"output": str(root / "ds")}), progress=False)
    train(TrainConfig(dataset=root / "ds", out=root / "run", model="small_cnn", epochs=1, resize=8, device="cpu"))
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_mistake_is_one_line_and_changes_nothing(case, workspace, tmp_path, monkeypatch, capfd):
    def place(text: str) -> str:
        return text.format(ds=workspace / "ds", run=workspace / "run", copy=tmp_path / "copy")

    if any("{copy}" in a for a in [*case.argv, *case.files]):  # a dataset this case may damage
        shutil.copytree(workspace / "ds", tmp_path / "copy")
    for name, content in case.files.items():
        path = tmp_path / place(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cropland", *map(place, case.argv)])
    before = _snapshot(tmp_path), _snapshot(workspace)
    with pytest.raises(SystemExit) as exit_info:
        cropland.cli.run()
    out, err = capfd.readouterr()
    assert (_snapshot(tmp_path), _snapshot(workspace)) == before  # nothing written or lost
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for words in case.says:
        assert words in lines[0], lines[0]


def _cropland(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in [sys.executable, "-m", "cropland.cli", *args])


def test_a_build_on_a_full_disk_stops_in_one_line_then_resumes(tmp_path):
    """400 KiB of disk: the build stops at the first failed write with one line (exit 2), its
    samples still pending, not failed; with more room the same command finishes the build."""
    from tests.limits import run_on_own_disk

    disk = tmp_path / "disk"
    (tmp_path / "c.yaml").write_text(_config(output=str(disk / "out")))
    build = _cropland("build", "--config", str(tmp_path / "c.yaml"))
    count = (f"{sys.executable} -c \"import sqlite3; print('tasks', dict(sqlite3.connect("
             f"'{disk}/out/manifest.sqlite').execute('SELECT status, count(*) FROM tasks GROUP BY status')))\"")
    done = run_on_own_disk(disk, "size=400k", f"{build} >/dev/null 2>{tmp_path}/full.err; echo status $?; "
                           f"{count}; mount -o remount,size=64m {disk}; {build} >/dev/null 2>&1; "
                           f"echo status $?; {count}")
    first, statuses, second, after = (line.split(" ", 1)[1] for line in done.stdout.splitlines())
    err = (tmp_path / "full.err").read_text()
    assert first == "2", err
    assert err.strip().splitlines()[-1].startswith("error: cannot write ")
    assert "No space left on device; free disk space and run the command again" in err
    assert "Traceback" not in err and "failed" not in statuses  # nothing to --retry-failed
    assert second == "0" and after == "{'done': 30}", done.stderr


def test_a_read_only_folder_is_one_line(tmp_path):
    from tests.limits import run_on_own_disk

    disk = tmp_path / "disk"
    (tmp_path / "c.yaml").write_text(_config(output=str(disk / "out")))
    done = run_on_own_disk(disk, "ro", _cropland("build", "--config", str(tmp_path / "c.yaml")))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {disk}/out: Read-only file system; choose a folder you may write to (or fix its permissions)"]


def test_a_second_build_of_a_folder_is_refused_in_one_line_naming_the_first(tmp_path, monkeypatch, capfd):
    """Two `cropland build` on one folder: the second is refused while the first runs, which ends well."""
    import json
    import subprocess
    import time

    (tmp_path / "c.yaml").write_text(_config(output="out"))
    first = subprocess.Popen([sys.executable, "-m", "cropland.cli", "build", "--config", "c.yaml"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock, deadline = tmp_path / "out" / ".cropland.lock", time.monotonic() + 60
    while not (lock.exists() and lock.read_text() and json.loads(lock.read_text())["pid"] == first.pid):
        assert time.monotonic() < deadline and first.poll() is None, "the first build did not start"
        time.sleep(0.05)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cropland", "build", "--config", "c.yaml"])
    with pytest.raises(SystemExit) as exit_info:
        cropland.cli.run()
    refused = capfd.readouterr().err.strip().splitlines()
    assert first.wait(timeout=300) == 0  # the first build was not disturbed
    assert exit_info.value.code == 2
    assert len(refused) == 1 and refused[0].startswith(f"error: {tmp_path / 'out'} is being written by pid {first.pid} (`")
    assert "build --config c.yaml`, since " in refused[0]
    assert refused[0].endswith("wait for it to end (or stop it), then run this command again")
