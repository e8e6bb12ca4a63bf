"""The task manifest: one row per (point, year, month) in SQLite, so builds resume.

Only the process driving the build writes to it (workers return results), so it stays
consistent with any number of workers. A task is ``pending``, ``done`` (its file exists
under its final name), ``empty`` (no clear pixel that month; the reason starts with
``no coverage``, ``all cloudy`` or ``no mask``) or ``failed`` (with a reason). Each task keeps
the fingerprint of the source it ended with (``source_state``): an ``empty`` task is run
again when the source's contents changed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cropland.core.naming import SampleName
from cropland.errors import DatasetError

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id    TEXT PRIMARY KEY,
    point_id   INTEGER NOT NULL,
    year       INTEGER NOT NULL,
    month      INTEGER NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'done', 'empty', 'failed')),
    path       TEXT,
    reason     TEXT,
    scenes     TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    updated_at REAL,
    source_state TEXT
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status);
"""
FINISHED = ("done", "empty")


@dataclass(frozen=True)
class TaskResult:
    """What a worker reports for one task."""

    task_id: str
    status: str
    path: str | None = None
    reason: str | None = None
    scenes: str | None = None


def task_id(sample: SampleName) -> str:
    """``{point_id}_{YYYYMM}``: unique per point and month, whatever the label."""
    return f"{sample.point_id}_{sample.year:04d}{sample.month:02d}"


class Manifest:
    """The SQLite task table of one build folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(tasks)")}
            if "source_state" not in columns:  # a manifest of an earlier version
                self._db.execute("ALTER TABLE tasks ADD COLUMN source_state TEXT")
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise DatasetError(
                f"{self.path} is not a usable task manifest ({e}); delete it and rerun: "
                "the samples already written are found again") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, samples: Iterable[SampleName]) -> None:
        """Register tasks; existing ones keep their state."""
        rows = [(task_id(s), s.point_id, s.year, s.month, s.stem) for s in samples]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO tasks (task_id, point_id, year, month, name) "
                "VALUES (?, ?, ?, ?, ?)", rows,
            )

    def todo(self, retry_failed: bool = False, source_state: str | None = None) -> set[str]:
        """Ids of tasks still to run: ``pending`` ones, ``failed`` ones with ``retry_failed``,
        and ``empty`` ones that ended with another ``source_state`` (when it is given)."""
        states = ("pending", "failed") if retry_failed else ("pending",)
        marks = ",".join("?" * len(states))
        return {r[0] for r in self._db.execute(
            f"SELECT task_id FROM tasks WHERE status IN ({marks}) OR (status = 'empty' AND ? "
            "IS NOT NULL AND source_state IS NOT ?)", (*states, source_state, source_state))}

    def record(self, results: Iterable[TaskResult], source_state: str | None = None) -> None:
        """Store results of finished tasks in one transaction, with the source's state."""
        now = time.time()
        rows = [(r.status, r.path, r.reason, r.scenes, now, source_state, r.task_id)
                for r in results]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE tasks SET status = ?, path = ?, reason = ?, scenes = ?, "
                "attempts = attempts + 1, updated_at = ?, source_state = ? WHERE task_id = ?",
                rows,
            )

    def reset_missing(self, root: Path) -> int:
        """Mark ``done`` tasks whose file vanished as ``pending`` again; return how many."""
        gone = [tid for tid, path in self._db.execute(
            "SELECT task_id, path FROM tasks WHERE status = 'done'") if not (root / path).exists()]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE tasks SET status = 'pending' WHERE task_id = ?", [(t,) for t in gone])
        return len(gone)

    def counts(self) -> dict[str, int]:
        """Number of tasks per status."""
        return dict(self._db.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status"))

    def empty_reasons(self) -> dict[str, int]:
        """Number of ``empty`` tasks per kind of reason (no coverage, all cloudy, no mask)."""
        return dict(self._db.execute(
            "SELECT CASE WHEN instr(reason, ':') THEN substr(reason, 1, instr(reason, ':') - 1) "
            "ELSE reason END AS kind, COUNT(*) FROM tasks WHERE status = 'empty' GROUP BY kind"))

    def failures(self) -> list[tuple[str, str]]:
        """(task_id, reason) of failed tasks."""
        return list(self._db.execute(
            "SELECT task_id, reason FROM tasks WHERE status = 'failed' ORDER BY task_id"))
