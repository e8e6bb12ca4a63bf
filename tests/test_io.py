"""Atomic writes: all or nothing under the final name, flushed to disk before the rename."""

from __future__ import annotations

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
