"""Safe writing: atomic files, the project's own temporaries, and an exclusive lock on a folder."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cropland.errors import CroplandError

if TYPE_CHECKING:
    import pandas as pd

#: Ending of every temporary file or folder this project writes; no user file ends so.
TEMP_SUFFIX = ".cropland-tmp"
#: The lock file of a folder being written (see :func:`folder_lock`).
LOCK_FILE = ".cropland.lock"


class FolderBusyError(CroplandError):
    """Another process is writing the folder."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    A crash leaves at most a ``.NAME.*.cropland-tmp`` file (see :func:`remove_temporaries`),
    never a half-written file under the final name; the data is flushed to disk before the
    rename, so a power cut cannot leave an empty file under the final name either.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table atomically, as Parquet if ``path`` ends in ``.parquet``, else CSV."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def remove_temporaries(root: str | Path) -> int:
    """Delete the temporaries that interrupted writes left under ``root``; return how many.

    Only names ending in :data:`TEMP_SUFFIX` are touched. Call it while holding the folder's
    :func:`folder_lock`, so that no running writer loses its temporaries.
    """
    removed = 0
    for leftover in sorted(Path(root).rglob(f"*{TEMP_SUFFIX}"), reverse=True):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def check_writable(folder: str | Path, size: int = 1 << 20) -> None:
    """Raise the OSError that writing ``size`` bytes into ``folder`` meets now (a full disk, a
    read-only one, a quota), naming the folder; nothing when the write succeeds."""
    probe = Path(folder) / f".disk-probe{TEMP_SUFFIX}"
    try:
        with probe.open("wb") as f:  # a buffered write: a short write is retried, then raises
            f.write(bytes(size))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(folder)) from None
    finally:
        probe.unlink(missing_ok=True)


_held: dict[Path, tuple[int, int]] = {}  # folder -> (lock file descriptor, depth)
_held_guard = threading.Lock()


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder`` exclusively: a second process is refused with a FolderBusyError that
    names the holder (pid, command, start time).

    The lock is ``flock`` on ``FOLDER/.cropland.lock``: the system releases it when its
    process ends in any way, so the lock of a killed process is simply taken over. Re-entrant
    within a process. A folder the lock created is removed again if nothing else was written
    to it (a command refused for a bad input leaves no trace).
    """
    folder = Path(folder).resolve()
    with _held_guard:
        if folder in _held:
            fd, depth = _held[folder]
            _held[folder] = (fd, depth + 1)
            created = None
        else:
            created = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
            _held[folder] = (_acquire(folder), 1)
    try:
        yield folder
    finally:
        with _held_guard:
            fd, depth = _held.pop(folder)
            if depth > 1:
                _held[folder] = (fd, depth - 1)
            else:
                if created is not None:
                    _remove_if_unused(folder, created)
                os.close(fd)  # releases the lock; the file stays (see _acquire)


def _remove_if_unused(folder: Path, created: Path) -> None:
    """Remove the lock file and the folders up to ``created`` (the first one the lock made)
    if nothing else was written to them."""
    try:
        if os.listdir(folder) != [LOCK_FILE]:
            return
        (folder / LOCK_FILE).unlink()
        for path in [folder, *folder.parents]:
            path.rmdir()
            if path == created:
                return
    except OSError:  # not empty, or moved: it stays
        return


def _acquire(folder: Path) -> int:
    path = folder / LOCK_FILE
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise FolderBusyError(
                f"{folder} is being written by {holder}; wait for it to end (or stop it), "
                "then run this command again") from None
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise FolderBusyError(f"{folder}: this file system cannot lock files "
                                      f"({e.strerror}); write the dataset to a local disk") from None
            raise
        if _same_file(fd, path):  # not a lock file its holder removed meanwhile (unused folder)
            break
        os.close(fd)
    me = {"pid": os.getpid(), "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
          "since": datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return os.path.samestat(os.fstat(fd), st)


def _describe_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {holder['pid']} (`{holder['command']}`, since {holder['since']})"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another process"
