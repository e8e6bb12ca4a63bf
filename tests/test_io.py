"""Atomic writes: all or nothing under the final name, flushed to disk before the rename."""

from __future__ import annotations

import json
import os

import pytest

from cropland.io import atomic_path, write_text_atomic


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_data_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("replace", str(a))) or real_replace(a, b))
    target = write_text_atomic(tmp_path / "b.txt", "new")
    assert target.read_text() == "new"
    assert [e[0] for e in events] == ["fsync", "replace"]
    assert events[0][1] == events[1][1]  # the temporary file itself was flushed


def test_only_the_projects_own_temporaries_are_removed(tmp_path):
    from cropland.io import TEMP_SUFFIX, remove_temporaries

    user_files = ["notes.tmp", ".notes.tmp", "tif/2019/.draft.tif.tmp", "a.cropland-tmp.txt"]
    for name in user_files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("mine")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "tif/2019/x.tif") as tmp:
        tmp.write_text("half")
        os.link(tmp, tmp_path / "tif/2019" / f".x.tif.killed{TEMP_SUFFIX}")  # as a kill -9 leaves it
        raise RuntimeError("crash")
    leftover_folder = tmp_path / f".demo-curated{TEMP_SUFFIX}"
    (leftover_folder / "tif").mkdir(parents=True)
    (leftover_folder / "tif" / "a.tif").write_text("partial copy")
    assert remove_temporaries(tmp_path) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(user_files)


def _hold_lock(folder, *command):
    """A process holding ``folder``'s lock until killed; returns once it holds it."""
    import subprocess
    import sys

    code = ("import sys, time; from cropland.io import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder), *command],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_folder_lock_refuses_a_second_holder_and_is_taken_over_when_its_holder_dies(tmp_path):
    from cropland.io import FolderBusyError, folder_lock

    holder = _hold_lock(tmp_path, "--config", "other.yaml")
    try:
        with pytest.raises(FolderBusyError) as refused, folder_lock(tmp_path):
            pass
        message = str(refused.value)
        assert f"pid {holder.pid} (`-c {tmp_path} --config other.yaml`, since " in message and "\n" not in message
    finally:
        holder.kill()  # SIGKILL: no chance to clean up
        holder.wait()
    with folder_lock(tmp_path), folder_lock(tmp_path):  # the stale lock is taken over; re-entrant
        lock = json.loads((tmp_path / ".cropland.lock").read_text())
        assert lock["pid"] == os.getpid()


def test_a_refused_command_leaves_no_folder_behind(tmp_path):
    from cropland.io import folder_lock

    target = tmp_path / "new" / "dataset"
    with pytest.raises(ValueError), folder_lock(target):
        raise ValueError("bad input found before anything was written")
    assert list(tmp_path.iterdir()) == []
    with folder_lock(target):
        (target / "config.yaml").write_text("x")
    assert sorted(p.name for p in target.iterdir()) == [".cropland.lock", "config.yaml"]
