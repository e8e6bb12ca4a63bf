"""The decision store on SQLite: tokens, exactly-once decisions, undo, audit, threads."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading

import pytest

from cropland.curate.store import ConflictingRetry, NothingToUndo, Store, StoreError, hash_token

POSTGRES_URL = os.environ.get("CROPLAND_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Store:
    """The same tests on SQLite and, when CROPLAND_TEST_POSTGRES_URL names a server, PostgreSQL."""
    if request.param == "sqlite":
        return Store(tmp_path / "d.sqlite")
    if not POSTGRES_URL:
        pytest.skip("set CROPLAND_TEST_POSTGRES_URL=postgresql://user:pw@127.0.0.1/db to test "
                    "the PostgreSQL store (needs pip install 'psycopg[binary]')")
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS reviewers, audit, decisions, quality, samples, tallies, class_tallies, meta")
    return Store(POSTGRES_URL)


def test_sqlite_is_in_wal_mode(tmp_path):
    Store(tmp_path / "d.sqlite")
    mode = sqlite3.connect(tmp_path / "d.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_tokens(store):
    token = store.add_reviewer("alice")
    assert store.reviewer_for_token(token) == "alice"
    assert store.reviewer_for_token(token + "x") is None
    new = store.add_reviewer("alice")  # a new token replaces the old one
    assert store.reviewer_for_token(token) is None and store.reviewer_for_token(new) == "alice"
    assert store._query("SELECT token_hash FROM reviewers") == [{"token_hash": hash_token(new)}]
    store.revoke_reviewer("alice")
    assert store.reviewer_for_token(new) is None
    with pytest.raises(StoreError, match="no reviewer 'bob'"):
        store.revoke_reviewer("bob")
    with pytest.raises(StoreError, match="reviewer name"):
        store.add_reviewer("no spaces please")


def test_decide_records_reviewer_time_reason(store):
    change = store.decide("d1", "alice", ["S1", "S2"], "reject", "clouds")
    assert change.applied and [e["sample_id"] for e in change.entries] == ["S1", "S2"]
    decisions = store.decisions()
    assert set(decisions) == {"S1", "S2"}
    assert decisions["S1"]["reviewer"] == "alice" and decisions["S1"]["reason"] == "clouds"
    assert decisions["S1"]["decided_at"].endswith("+00:00")


def test_retry_returns_the_recorded_change(store):
    first = store.decide("d1", "alice", ["S1"], "accept", "")
    again = store.decide("d1", "alice", ["S1"], "accept", "")
    assert not again.applied and again.entries == first.entries
    assert len(store.audit()) == 1
    with pytest.raises(ConflictingRetry):
        store.decide("d1", "alice", ["S2"], "accept", "")


def test_undo_restores_the_previous_state(store):
    store.decide("d1", "alice", ["S1"], "accept", "looks fine")
    store.decide("d2", "alice", ["S1"], "reject", "missed a cloud")
    store.undo("u1", "alice")
    assert store.decisions()["S1"]["decision"] == "accept"
    assert store.decisions()["S1"]["reason"] == "looks fine"
    store.undo("u2", "alice")
    assert store.decisions() == {}
    with pytest.raises(NothingToUndo):
        store.undo("u3", "alice")
    assert not store.undo("u2", "alice").applied  # a retried undo is not applied twice
    assert [e["action"] for e in store.audit()] == ["undo", "undo", "reject", "accept"]


def test_undo_keeps_a_later_decision_by_someone_else(store):
    store.decide("d1", "alice", ["S1"], "accept", "")
    store.decide("d2", "bob", ["S1"], "reject", "clouds")
    store.undo("u1", "alice")
    assert store.decisions()["S1"]["decision"] == "reject"
    assert store.decisions()["S1"]["reviewer"] == "bob"


def test_interleaved_undos_end_with_no_decision(store):
    """A accepts, B rejects, A undoes, B undoes: both changes are retracted, nothing is left."""
    store.decide("d1", "alice", ["S1"], "accept", "")
    store.decide("d2", "bob", ["S1"], "reject", "clouds")
    store.undo("u1", "alice")
    assert store.decisions()["S1"]["reviewer"] == "bob"
    store.undo("u2", "bob")
    assert store.decisions() == {}


def test_undo_falls_back_to_the_latest_change_still_standing(store):
    """An undo restores the latest decision on the sample that nobody undid, whoever made it."""
    store.decide("d1", "alice", ["S1"], "accept", "first look")
    store.decide("d2", "bob", ["S1"], "reject", "clouds")
    store.decide("d3", "carol", ["S1"], "accept", "clouds are thin")
    store.undo("u1", "bob")  # bob's reject was already overridden: carol's accept stays
    assert store.decisions()["S1"]["reviewer"] == "carol"
    store.undo("u2", "carol")  # carol's gone, bob's undone: alice's accept is what stands
    current = store.decisions()["S1"]
    assert (current["decision"], current["reviewer"], current["reason"]) == ("accept", "alice", "first look")
    store.undo("u3", "alice")
    assert store.decisions() == {}


def test_concurrent_threads_record_each_decision_once(store):
    """8 threads, each sending 40 decisions and retrying every one of them once."""
    errors = []

    def reviewer(r: int) -> None:
        try:
            for i in range(40):
                for _ in range(2):
                    store.decide(f"r{r}-{i:03d}", f"rev{r}", [f"S{i % 7}"], "accept", "")
        except StoreError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reviewer, args=(r,)) for r in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [e["decision_id"] for e in store.audit(limit=1000)]
    assert len(ids) == 320 and len(set(ids)) == 320
    assert set(store.decisions()) == {f"S{i}" for i in range(7)}


def test_postgresql_without_psycopg_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(StoreError, match=r"pip install 'psycopg\[binary\]'"):
        Store("postgresql://127.0.0.1/none")
