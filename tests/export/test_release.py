"""Export of a built dataset: every output, resumable reruns, split changes, the pool."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from cropland.config import BuildConfig, IndicesConfig, dump_config
from cropland.dataset import DatasetFolder, Splits, tif_path
from cropland.export import release
from cropland.export.geotiff import write_sample
from cropland.export.release import export_release
from cropland.io import TEMP_SUFFIX
from tests.export.export_fakes import SOURCE, make_composite

SAMPLES = [(1, 2019, 6, "OAT"), (1, 2020, 7, "CORN"), (2, 2019, 6, "OAT"), (3, 2020, 8, "POTATO")]


def _config(**export: bool) -> BuildConfig:
    return BuildConfig(
        years=[2019, 2020], points={"synthetic_per_class": 2}, export=export or {}
    )


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    for k, (point, year, month, label) in enumerate(SAMPLES):
        c = make_composite(point, year, month, "MB", label, seed=k)
        write_sample(c, tif_path(root, c.sample), IndicesConfig(), SOURCE)
    (root / "config.yaml").write_text(dump_config(_config()))
    return root


SPLITS = Splits({1: "training", 2: "validation", 3: "test"}, 0, {})


def _pngs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("20*/*/*/*/*.png"))


def test_samples_skip_temporary_files(dataset: Path) -> None:
    (dataset / f"tif/2019/OAT/.POINT_9_201906_MB_OAT.tif.x1{TEMP_SUFFIX}").write_bytes(b"partial")
    stems = sorted(s.stem for s, _ in DatasetFolder(dataset).samples())
    assert stems == sorted(f"POINT_{p}_{y}{m:02d}_MB_{c}" for p, y, m, c in SAMPLES)


def test_export_writes_every_png_and_zip_then_resumes(dataset: Path) -> None:
    summary = export_release(dataset, _config(), SPLITS)
    assert (summary.samples, summary.pngs_written, summary.zips_written) == (4, 28, 4)
    pngs = _pngs(dataset)
    assert len(pngs) == 28
    assert "2020/RGB/training/CORN/POINT_1_202007_MB_CORN_RGB.png" in pngs
    assert "2019/NDVI/validation/OAT/POINT_2_201906_MB_OAT_NDVI.png" in pngs
    assert "2020/PSRI/test/POTATO/POINT_3_202008_MB_POTATO_PSRI.png" in pngs
    with zipfile.ZipFile(dataset / "raw/2019/OAT/POINT_2_201906_MB_OAT.zip") as zf:
        assert len(zf.namelist()) == 19

    # A rerun writes nothing; a removed output is written again, alone.
    again = export_release(dataset, _config(), SPLITS)
    assert (again.pngs_written, again.zips_written, again.up_to_date) == (0, 0, 4)
    (dataset / "2019/NDVI/validation/OAT/POINT_2_201906_MB_OAT_NDVI.png").unlink()
    repaired = export_release(dataset, _config(), SPLITS)
    assert (repaired.pngs_written, repaired.zips_written, repaired.up_to_date) == (1, 0, 3)


def test_truncated_outputs_are_written_again(dataset: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A PNG or zip cut short (a copy interrupted, a damaged disk) is not 'up to date'."""
    export_release(dataset, _config(), SPLITS)
    png = dataset / "2019/NDVI/validation/OAT/POINT_2_201906_MB_OAT_NDVI.png"
    raw = dataset / "raw/2020/POTATO/POINT_3_202008_MB_POTATO.zip"
    whole_png, whole_zip = png.read_bytes(), raw.read_bytes()
    png.write_bytes(whole_png[: len(whole_png) // 2])
    raw.write_bytes(whole_zip[:-100])
    (dataset / "raw/2019/OAT/POINT_2_201906_MB_OAT.zip").write_bytes(b"")
    repaired = export_release(dataset, _config(), SPLITS)
    assert (repaired.pngs_written, repaired.zips_written, repaired.up_to_date) == (1, 2, 2)
    assert png.read_bytes() == whole_png and raw.read_bytes() == whole_zip
    assert f"{png} is truncated or damaged: writing it again" in caplog.text


def test_leftovers_of_a_killed_export_are_removed(dataset: Path) -> None:
    partial = dataset / "raw/2019/OAT" / f".POINT_2_201906_MB_OAT.zip.k1{TEMP_SUFFIX}"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"PK\x03\x04 half a zip")
    mine = dataset / "raw/2019/OAT/.notes.zip.tmp"
    mine.write_text("a user's file")
    export_release(dataset, _config(), SPLITS)
    assert not partial.exists() and mine.read_text() == "a user's file"


def test_new_splits_move_pngs_without_leaving_copies(dataset: Path) -> None:
    export_release(dataset, _config(raw_zip=False), SPLITS)
    moved = Splits({1: "test", 2: "validation", 3: "test"}, 1, {})
    summary = export_release(dataset, _config(raw_zip=False), moved)
    assert summary.stale_removed == 14 and summary.pngs_written == 14
    assert not [p for p in _pngs(dataset) if "training" in p]
    assert not (dataset / "raw").exists()


def test_export_options_are_honoured(dataset: Path) -> None:
    summary = export_release(dataset, _config(png=False), SPLITS)
    assert (summary.pngs_written, summary.zips_written) == (0, 4)
    assert _pngs(dataset) == []


def test_process_pool_writes_every_file(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release, "POOL_MIN_SAMPLES", 1)
    summary = export_release(dataset, _config(), SPLITS, workers=2)
    assert (summary.pngs_written, summary.zips_written) == (28, 4)
    assert len(_pngs(dataset)) == 28


def test_dataset_config(dataset: Path) -> None:
    assert DatasetFolder(dataset).config().years == [2019, 2020]


def _workers_of(pid: int) -> list[int]:
    """The pool workers among a process's children (spawned: ``spawn_main`` in their command)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in command:
            found.append(int(proc.name))
    return found


def _running(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_workers_stop_when_the_export_is_killed(tmp_path: Path) -> None:
    """`kill -9` of `cropland export --workers 2` mid-way: its workers stop writing and exit."""
    import signal
    import subprocess
    import sys
    import time

    from cropland.synthetic import write_synthetic_release

    root = tmp_path / "big"
    write_synthetic_release(root, images=400, workers=1, progress=False)  # 400 >= POOL_MIN_SAMPLES
    export = subprocess.Popen([sys.executable, "-m", "cropland.cli", "export", str(root), "--workers", "2"],
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(workers := _workers_of(export.pid)) < 2 or len(list(root.glob("20*/RGB/*/*/*.png"))) < 20:
        assert time.monotonic() < deadline and export.poll() is None, "the export did not start its pool"
        time.sleep(0.1)
    os.kill(export.pid, signal.SIGKILL)
    export.wait()
    killed = time.time()
    time.sleep(2)
    orphans = [w for w in workers if _running(w)]
    for w in orphans:
        os.kill(w, signal.SIGKILL)
    assert orphans == []
    written_after = [p for p in root.rglob("*.png") if p.stat().st_mtime > killed + 1]
    assert written_after == []
    assert len(list(root.glob("20*/RGB/*/*/*.png"))) < 400  # it was killed mid-way
