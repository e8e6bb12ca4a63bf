"""Review decisions, their audit log, reviewer tokens and cached quality scores, in SQL.

SQLite is the default (a file, WAL mode, one connection per thread, ``BEGIN IMMEDIATE``
write transactions); PostgreSQL is used when the location is a ``postgresql://`` URL
(``pip install psycopg``; writers take turns through a table lock). Both run the same
statements.

Every change is one transaction that appends to ``audit`` and updates ``decisions``. A
change carries a client-chosen ``decision_id``: sending it again returns the recorded
change instead of applying it twice. ``undo`` retracts a reviewer's latest change: a sample
it still decides falls back to its latest change that nobody retracted, or to no decision.

The review app filters, counts and pages in SQL: ``samples`` indexes the dataset's samples
(one dataset per store) with each one's quality verdict and decision, and ``class_tallies``
counts samples per class, verdict, decision and reviewer. Both are brought up to date when
the app starts (:meth:`Store.index_samples`) and changed with every decision, in its
transaction, so a request costs the rows it returns, not the size of the dataset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cropland.errors import CroplandError
from cropland.parallel import chunked

log = logging.getLogger(__name__)

#: The store's file in the dataset folder when no ``--db`` is given.
DEFAULT_DB = "curate.sqlite"
DECISIONS: tuple[str, ...] = ("accept", "reject")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviewers (
  name TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS audit (
  seq {serial},
  decision_id TEXT NOT NULL,
  sample_id TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('accept', 'reject', 'undo')),
  reason TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  at TEXT NOT NULL,
  prev_decision TEXT,
  prev_reason TEXT,
  prev_reviewer TEXT,
  prev_at TEXT,
  prev_seq BIGINT,
  undone_by BIGINT,
  UNIQUE (decision_id, sample_id)
);
CREATE INDEX IF NOT EXISTS audit_by_reviewer ON audit (reviewer, seq);
CREATE INDEX IF NOT EXISTS audit_by_sample ON audit (sample_id, seq);
CREATE TABLE IF NOT EXISTS decisions (
  sample_id TEXT PRIMARY KEY,
  decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject')),
  reason TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  decided_at TEXT NOT NULL,
  audit_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS quality (
  sample_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  reasons TEXT NOT NULL,
  metrics TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  scored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
  sample_id TEXT PRIMARY KEY,
  sort_key BIGINT NOT NULL,
  point_id BIGINT NOT NULL,
  year INTEGER NOT NULL,
  month INTEGER NOT NULL,
  province TEXT NOT NULL,
  label TEXT NOT NULL,
  split TEXT,
  path TEXT NOT NULL,
  quality TEXT NOT NULL DEFAULT 'review',
  decision TEXT NOT NULL DEFAULT 'none'
);
-- derived, and replaced by class_tallies (which counts by class too)
DROP TABLE IF EXISTS tallies;
CREATE TABLE IF NOT EXISTS class_tallies (
  label TEXT NOT NULL,
  quality TEXT NOT NULL,
  decision TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (label, quality, decision, reviewer)
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
"""
#: Fields of a row of the sample index, in order (see :meth:`Store.index_samples`).
SAMPLE_FIELDS: tuple[str, ...] = (
    "sample_id", "sort_key", "point_id", "year", "month", "province", "label", "split", "path",
)
#: Filters of :meth:`Store.page`: columns of the sample index.
FILTERS: tuple[str, ...] = ("label", "year", "month", "province", "quality", "decision")
#: Filters whose counts the tallies hold.
_TALLIED = {"label", "quality", "decision"}
#: The sample index's secondary indexes (name -> columns): one per filter, and for paging.
_SAMPLE_INDEXES = {
    "samples_by_key": "sort_key",
    "samples_by_point": "point_id, sort_key",
    **{f"samples_by_{c}": f"{c}, sort_key" for c in FILTERS},
}
_ITEM = (
    "SELECT s.sample_id AS id, s.point_id, s.year, s.month, s.province, s.label, s.split, "
    "s.quality, q.reasons, d.decision, d.reviewer, d.reason AS decision_reason FROM {samples} s "
    "LEFT JOIN quality q ON q.sample_id = s.sample_id "
    "LEFT JOIN decisions d ON d.sample_id = s.sample_id"
)
_SERIAL = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
}


class StoreError(CroplandError):
    """The decision store refused a change; the message says why."""


class NothingToUndo(StoreError):
    """The reviewer has no change left to undo."""


class ConflictingRetry(StoreError):
    """A decision id was reused for a different change."""


@dataclass
class Change:
    """The outcome of a decision or undo: its audit entries, and whether it was new."""

    decision_id: str
    applied: bool
    entries: list[dict[str, Any]] = field(default_factory=list)


def hash_token(token: str) -> str:
    """SHA-256 of a token (tokens are random, 192 bits: a fast hash is enough)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now() -> str:
    """The current UTC time, ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Store:
    """The decision store at ``location``: a SQLite file path or a PostgreSQL URL."""

    def __init__(self, location: str | Path):
        self.location = str(location)
        self.dialect = "postgresql" if self.location.startswith(("postgresql:", "postgres:")) else "sqlite"
        self._local = threading.local()
        if self.dialect == "sqlite":
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)
        with self._transaction(lock=False) as db:
            for statement in _SCHEMA.format(serial=_SERIAL[self.dialect]).split(";"):
                if statement.strip():
                    db.execute(statement)
            _create_sample_indexes(db)

    # -- connections -------------------------------------------------------------------
    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> Any:
        if self.dialect == "postgresql":
            try:
                import psycopg
                from psycopg.rows import dict_row
            except ImportError:
                raise StoreError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'") from None
            return psycopg.connect(self.location, autocommit=True, row_factory=dict_row)
        conn = sqlite3.connect(self.location, timeout=30, isolation_level=None)
        conn.row_factory = lambda cur, row: {d[0]: v for d, v in zip(cur.description, row, strict=True)}
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _transaction(self, lock: bool = True) -> Iterator[_Cursor]:
        """A write transaction; writers take turns (readers are never blocked)."""
        conn = self._connection()
        if self.dialect == "postgresql":
            with conn.transaction():
                if lock:  # one writer at a time, as SQLite's BEGIN IMMEDIATE
                    conn.execute("LOCK TABLE audit IN EXCLUSIVE MODE")
                yield _Cursor(conn, "%s")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _Cursor(conn, "?")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _cursor(self) -> _Cursor:
        """A cursor outside any transaction (reads, and statements that need none)."""
        return _Cursor(self._connection(), "%s" if self.dialect == "postgresql" else "?")

    def _query(self, sql: str, params: Iterable = ()) -> list[dict[str, Any]]:
        return self._cursor().all(sql, params)

    # -- reviewers ---------------------------------------------------------------------
    def add_reviewer(self, name: str) -> str:
        """Create a reviewer (or give an existing one a new token); return the new token."""
        if not _NAME.fullmatch(name):
            raise StoreError(f"reviewer name {name!r}: use 1-64 letters, digits or _.@-")
        token = secrets.token_urlsafe(24)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO reviewers (name, token_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, "
                "created_at = excluded.created_at, revoked_at = NULL",
                (name, hash_token(token), now()),
            )
        return token

    def revoke_reviewer(self, name: str) -> None:
        """Invalidate a reviewer's token (their decisions stay)."""
        with self._transaction() as db:
            if not db.all("SELECT name FROM reviewers WHERE name = ?", (name,)):
                raise StoreError(f"no reviewer {name!r}; see `cropland curate token list`")
            db.execute("UPDATE reviewers SET revoked_at = ? WHERE name = ?", (now(), name))

    def reviewers(self) -> list[dict[str, Any]]:
        """Every reviewer: name, created_at, revoked_at."""
        return self._query("SELECT name, created_at, revoked_at FROM reviewers ORDER BY name")

    def reviewer_for_token(self, token: str) -> str | None:
        """The active reviewer holding ``token``, or None."""
        rows = self._query(
            "SELECT name FROM reviewers WHERE token_hash = ? AND revoked_at IS NULL",
            (hash_token(token),),
        )
        return rows[0]["name"] if rows else None

    # -- decisions ---------------------------------------------------------------------
    def decide(
        self, decision_id: str, reviewer: str, sample_ids: list[str], decision: str, reason: str
    ) -> Change:
        """Record ``decision`` (accept/reject) on samples, once per ``decision_id``."""
        if decision not in DECISIONS:
            raise StoreError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if not sample_ids or len(set(sample_ids)) != len(sample_ids):
            raise StoreError("give at least one sample id, each once")
        try:
            with self._transaction() as db:
                done = self._recorded(db, decision_id)
                if done:
                    return self._retry(decision_id, done, sample_ids, decision)
                at = now()
                entries = [
                    self._apply(db, decision_id, reviewer, sid, decision, reason, at)
                    for sid in sample_ids
                ]
        except _integrity_errors():  # a concurrent retry won the race (PostgreSQL)
            done = self._query_recorded(decision_id)
            if not done:
                raise
            return self._retry(decision_id, done, sample_ids, decision)
        return Change(decision_id, True, entries)

    def _apply(
        self, db: _Cursor, decision_id: str, reviewer: str, sid: str, decision: str, reason: str,
        at: str,
    ) -> dict[str, Any]:
        entry, before = self._audit(db, decision_id, sid, decision, reason, reviewer, at)
        self._reindex(db, sid, before, decision, reviewer)
        db.execute(
            "INSERT INTO decisions (sample_id, decision, reason, reviewer, decided_at, audit_seq) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sample_id) DO UPDATE SET "
            "decision = excluded.decision, reason = excluded.reason, "
            "reviewer = excluded.reviewer, decided_at = excluded.decided_at, "
            "audit_seq = excluded.audit_seq",
            (sid, decision, reason, reviewer, at, entry["seq"]),
        )
        return entry

    @staticmethod
    def _audit(
        db: _Cursor, decision_id: str, sid: str, action: str, reason: str, reviewer: str, at: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Append one audit row (with the sample's decision before it); return it and that decision."""
        current = db.all("SELECT * FROM decisions WHERE sample_id = ?", (sid,))
        c = current[0] if current else {}
        seq = db.all(
            "INSERT INTO audit (decision_id, sample_id, action, reason, reviewer, at, "
            "prev_decision, prev_reason, prev_reviewer, prev_at, prev_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (decision_id, sid, action, reason, reviewer, at, c.get("decision"),
             c.get("reason"), c.get("reviewer"), c.get("decided_at"), c.get("audit_seq")),
        )[0]["seq"]
        entry = {"seq": seq, "sample_id": sid, "action": action, "reason": reason,
                 "reviewer": reviewer, "at": at}
        return entry, c

    @staticmethod
    def _recorded(db: _Cursor, decision_id: str) -> list[dict[str, Any]]:
        return db.all(
            "SELECT seq, sample_id, action, reason, reviewer, at FROM audit "
            "WHERE decision_id = ? ORDER BY seq", (decision_id,),
        )

    def _query_recorded(self, decision_id: str) -> list[dict[str, Any]]:
        return self._recorded(
            _Cursor(self._connection(), "%s" if self.dialect == "postgresql" else "?"), decision_id
        )

    @staticmethod
    def _retry(decision_id: str, done: list[dict], sample_ids: list[str] | None, action: str) -> Change:
        same = done[0]["action"] == action and (
            sample_ids is None or sorted(r["sample_id"] for r in done) == sorted(sample_ids)
        )
        if not same:
            raise ConflictingRetry(
                f"decision id {decision_id} was already used for another change; "
                "send a new id for a new decision"
            )
        return Change(decision_id, False, done)

    def undo(self, decision_id: str, reviewer: str) -> Change:
        """Revert ``reviewer``'s latest change that is not undone yet, once per ``decision_id``.

        A sample decided again by someone since keeps that later decision; otherwise it takes
        its latest decision that is not undone (never one that was), or none.
        """
        try:
            with self._transaction() as db:
                done = self._recorded(db, decision_id)
                if done:
                    return self._retry(decision_id, done, None, "undo")
                latest = db.all(
                    "SELECT decision_id FROM audit WHERE reviewer = ? AND action <> 'undo' "
                    "AND undone_by IS NULL ORDER BY seq DESC LIMIT 1", (reviewer,),
                )
                if not latest:
                    raise NothingToUndo(f"{reviewer} has no decision left to undo")
                target = db.all(
                    "SELECT * FROM audit WHERE decision_id = ? ORDER BY seq", (latest[0]["decision_id"],)
                )
                at = now()
                entries = [self._revert(db, decision_id, reviewer, row, at) for row in target]
        except _integrity_errors():
            done = self._query_recorded(decision_id)
            if not done:
                raise
            return self._retry(decision_id, done, None, "undo")
        return Change(decision_id, True, entries)

    def _revert(self, db: _Cursor, decision_id: str, reviewer: str, row: dict, at: str) -> dict:
        sid = row["sample_id"]
        entry, c = self._audit(db, decision_id, sid, "undo", f"undo #{row['seq']}", reviewer, at)
        db.execute("UPDATE audit SET undone_by = ? WHERE seq = ?", (entry["seq"], row["seq"]))
        if c.get("audit_seq") == row["seq"]:  # still the sample's current decision
            standing = db.all(  # the latest change on the sample that nobody undid
                "SELECT seq, action, reason, reviewer, at FROM audit WHERE sample_id = ? "
                "AND action <> 'undo' AND undone_by IS NULL ORDER BY seq DESC LIMIT 1", (sid,),
            )
            latest = standing[0] if standing else {"action": "none", "reviewer": ""}
            self._reindex(db, sid, c, latest["action"], latest["reviewer"])
            if not standing:
                db.execute("DELETE FROM decisions WHERE sample_id = ?", (sid,))
            else:
                db.execute(
                    "UPDATE decisions SET decision = ?, reason = ?, reviewer = ?, decided_at = ?, "
                    "audit_seq = ? WHERE sample_id = ?",
                    (latest["action"], latest["reason"], latest["reviewer"], latest["at"],
                     latest["seq"], sid),
                )
        return entry

    def decisions(self) -> dict[str, dict[str, Any]]:
        """The current decision of every decided sample, by sample id."""
        rows = self._query("SELECT * FROM decisions")
        return {r["sample_id"]: r for r in rows}

    def audit(self, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """Audit entries, newest first; ``before`` pages back from a sequence number."""
        sql = "SELECT seq, decision_id, sample_id, action, reason, reviewer, at, undone_by FROM audit"
        params: tuple = ()
        if before is not None:
            sql, params = sql + " WHERE seq < ?", (before,)
        return self._query(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit))

    @staticmethod
    def _reindex(db: _Cursor, sid: str, before: dict[str, Any], decision: str, reviewer: str) -> None:
        """Move a sample whose decision changes (``before``: its decisions row, or empty) in the
        sample index and the tallies; nothing for a sample the index does not hold."""
        rows = db.all("UPDATE samples SET decision = ? WHERE sample_id = ? RETURNING label, quality",
                      (decision, sid))
        if not rows:
            return
        label, quality = rows[0]["label"], rows[0]["quality"]
        for decided, by, step in ((before.get("decision", "none"), before.get("reviewer", ""), -1),
                                  (decision, reviewer if decision != "none" else "", 1)):
            db.execute(
                "INSERT INTO class_tallies (label, quality, decision, reviewer, n) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (label, quality, decision, reviewer) "
                "DO UPDATE SET n = class_tallies.n + excluded.n",
                (label, quality, decided, by, step),
            )

    # -- quality cache -----------------------------------------------------------------
    def quality(self) -> dict[str, dict[str, Any]]:
        """Cached quality results by sample id: status, reasons, metrics, fingerprint."""
        rows = self._query("SELECT * FROM quality")
        for r in rows:
            r["reasons"], r["metrics"] = json.loads(r["reasons"]), json.loads(r["metrics"])
        return {r["sample_id"]: r for r in rows}

    def fingerprints(self, sample_ids: list[str]) -> dict[str, str]:
        """The fingerprint the cached quality result of each of these samples was computed for
        (samples never scored left out); ask for a few hundred ids at a time."""
        if not sample_ids:
            return {}
        marks = ", ".join("?" * len(sample_ids))
        rows = self._query(f"SELECT sample_id, fingerprint FROM quality WHERE sample_id IN ({marks})", sample_ids)
        return {r["sample_id"]: r["fingerprint"] for r in rows}

    def save_quality(self, results: Iterable[tuple[Any, str]]) -> None:
        """Store ``(SampleQuality, fingerprint)`` pairs, replacing older scores."""
        at = now()
        rows = ((q.sample_id, q.status, json.dumps(q.reasons), json.dumps(_finite(q.metrics)),
                 fingerprint, at) for q, fingerprint in results)
        with self._transaction() as db:
            for batch in chunked(rows, 5000):
                db.many(
                    "INSERT INTO quality (sample_id, status, reasons, metrics, fingerprint, "
                    "scored_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sample_id) DO UPDATE SET "
                    "status = excluded.status, reasons = excluded.reasons, "
                    "metrics = excluded.metrics, fingerprint = excluded.fingerprint, "
                    "scored_at = excluded.scored_at",
                    batch,
                )

    # -- sample index ------------------------------------------------------------------
    def index_samples(self, rows: Iterable[tuple], version: str) -> None:
        """Make the sample index hold the dataset's samples, then bring every sample's
        quality verdict and decision up to date in it and recount the tallies. Rebuilding
        the index (the dataset changed) drops its SQL indexes until it commits, so other
        readers of the store wait for it on PostgreSQL.

        Args:
            rows: one tuple of :data:`SAMPLE_FIELDS` per sample; read only when ``version``
                differs from the one indexed last (the dataset changed).
            version: identifies the rows (a digest of them).
        """
        with self._transaction() as db:
            indexed = db.all("SELECT value FROM meta WHERE key = 'samples'")
            rebuilt = not indexed or indexed[0]["value"] != version
            if rebuilt:  # load, then build the indexes: at 785,360 rows 2.6x faster than row by row
                for name in _SAMPLE_INDEXES:
                    db.execute(f"DROP INDEX IF EXISTS {name}")
                db.execute("DELETE FROM samples")
                insert = (f"INSERT INTO samples ({', '.join(SAMPLE_FIELDS)}) "
                          f"VALUES ({', '.join('?' * len(SAMPLE_FIELDS))})")
                for batch in chunked(rows, 5000):
                    db.many(insert, batch)
                db.execute("INSERT INTO meta (key, value) VALUES ('samples', ?) ON CONFLICT (key) "
                           "DO UPDATE SET value = excluded.value", (version,))
            db.execute(
                "UPDATE samples SET quality = v.quality, decision = v.decision FROM ("
                "SELECT s.sample_id, COALESCE(q.status, 'review') AS quality, "
                "COALESCE(d.decision, 'none') AS decision FROM samples s "
                "LEFT JOIN quality q ON q.sample_id = s.sample_id "
                "LEFT JOIN decisions d ON d.sample_id = s.sample_id) v "
                "WHERE v.sample_id = samples.sample_id "
                "AND (samples.quality <> v.quality OR samples.decision <> v.decision)"
            )
            if rebuilt:
                _create_sample_indexes(db)
            db.execute("DELETE FROM class_tallies")
            db.execute(
                "INSERT INTO class_tallies (label, quality, decision, reviewer, n) "
                "SELECT s.label, s.quality, s.decision, COALESCE(d.reviewer, ''), COUNT(*) "
                "FROM samples s LEFT JOIN decisions d ON d.sample_id = s.sample_id "
                "GROUP BY s.label, s.quality, s.decision, COALESCE(d.reviewer, '')"
            )
        if rebuilt:
            self._cursor().execute("ANALYZE samples")  # the planner's statistics of the new rows

    def sample_path(self, sample_id: str) -> str | None:
        """The indexed path of a sample (relative to the dataset folder), or None."""
        rows = self._query("SELECT path FROM samples WHERE sample_id = ?", (sample_id,))
        return rows[0]["path"] if rows else None

    def indexed(self, sample_ids: list[str]) -> set[str]:
        """Which of these ids the sample index holds."""
        marks = ", ".join("?" * len(sample_ids))
        rows = self._query(f"SELECT sample_id FROM samples WHERE sample_id IN ({marks})", sample_ids)
        return {r["sample_id"] for r in rows}

    def facets(self) -> dict[str, list]:
        """The distinct classes, years, months and provinces of the indexed samples."""
        return {c: [r["v"] for r in self._query(f"SELECT DISTINCT {c} AS v FROM samples ORDER BY v")]
                for c in ("label", "year", "month", "province")}

    def items(self, sample_ids: list[str]) -> list[dict[str, Any]]:
        """The review rows of these samples (unknown ids left out), in review order."""
        if not sample_ids:
            return []
        marks = ", ".join("?" * len(sample_ids))
        return self._query(_ITEM.format(samples="samples") +
                           f" WHERE s.sample_id IN ({marks}) ORDER BY s.sort_key", sample_ids)

    def same_point(self, sample_id: str) -> list[dict[str, Any]]:
        """The review rows of every sample of this sample's point, by year and month."""
        return self._query(
            _ITEM.format(samples="samples") + " WHERE s.point_id = "
            "(SELECT point_id FROM samples WHERE sample_id = ?) ORDER BY s.sort_key", (sample_id,))

    def metrics(self, sample_id: str) -> dict[str, Any]:
        """The quality metrics of a sample (empty when it was not scored)."""
        rows = self._query("SELECT metrics FROM quality WHERE sample_id = ?", (sample_id,))
        return json.loads(rows[0]["metrics"]) if rows else {}

    def page(self, filters: dict[str, Any], offset: int, limit: int) -> tuple[int, list[dict]]:
        """How many indexed samples match ``filters`` (column -> value, see :data:`FILTERS`),
        and the review rows of ``limit`` of them from ``offset`` on, in review order."""
        wanted = {k: v for k, v in filters.items() if v is not None}
        unknown = set(wanted) - set(FILTERS)
        if unknown:
            raise StoreError(f"unknown filter(s) {sorted(unknown)}; use {', '.join(FILTERS)}")
        where = " AND ".join(f"{k} = ?" for k in wanted)
        where = f" WHERE {where}" if where else ""
        params = list(wanted.values())
        if set(wanted) <= _TALLIED:
            total = sum(r["n"] for r in self._query(f"SELECT n FROM class_tallies{where}", params))
        else:
            total = self._query(f"SELECT COUNT(*) AS n FROM samples{where}", params)[0]["n"]
        window = f"(SELECT * FROM samples{where} ORDER BY sort_key LIMIT ? OFFSET ?)"
        rows = self._query(_ITEM.format(samples=window) + " ORDER BY s.sort_key",
                           [*params, limit, offset])
        return int(total), rows

    def progress(self) -> dict[str, Any]:
        """Counts of the indexed samples: by automatic verdict, decision, final status,
        reviewer, and how many still wait for a reviewer; read from the tallies."""
        rows = self._query("SELECT quality, decision, reviewer, n FROM class_tallies WHERE n <> 0")
        statuses = ("accepted", "review", "rejected")
        out: dict[str, Any] = {
            "total": sum(r["n"] for r in rows),
            "quality": dict.fromkeys(statuses, 0),
            "decided": {"accept": 0, "reject": 0},
            "to_review": 0,
            "final": dict.fromkeys(statuses, 0),
            "reviewers": {},
        }
        for r in rows:
            quality, decision, n = r["quality"], r["decision"], int(r["n"])
            out["quality"][quality] = out["quality"].get(quality, 0) + n
            if decision == "none":
                out["to_review"] += n if quality == "review" else 0
                out["final"][quality] = out["final"].get(quality, 0) + n
            else:
                out["decided"][decision] += n
                out["final"]["accepted" if decision == "accept" else "rejected"] += n
                out["reviewers"][r["reviewer"]] = out["reviewers"].get(r["reviewer"], 0) + n
        return out


class _Cursor:
    """Runs ``?``-placeholder SQL on either driver."""

    def __init__(self, conn: Any, placeholder: str):
        self.conn, self.placeholder = conn, placeholder

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def execute(self, sql: str, params: Iterable = ()) -> None:
        self.conn.execute(self._sql(sql), tuple(params))

    def all(self, sql: str, params: Iterable = ()) -> list[dict[str, Any]]:
        return list(self.conn.execute(self._sql(sql), tuple(params)).fetchall())

    def many(self, sql: str, rows: list[tuple]) -> None:
        """Run a statement once per row (batched by the driver)."""
        if self.placeholder == "?":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)


def _create_sample_indexes(db: _Cursor) -> None:
    for name, columns in _SAMPLE_INDEXES.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON samples ({columns})")


def _integrity_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.IntegrityError]
    try:
        import psycopg

        errors.append(psycopg.errors.UniqueViolation)
    except ImportError:
        pass
    return tuple(errors)


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics with NaN replaced by None (JSON has no NaN)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()}
