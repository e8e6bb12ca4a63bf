"""The store's sample index: filters, counts, pages and progress in SQL, kept in step with
every decision and undo (SQLite, and PostgreSQL when CROPLAND_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from types import SimpleNamespace

import pytest

from tests.curate.test_store import store  # noqa: F401  (the fixture, on both databases)

LABELS = ("BARLEY", "CORN", "OAT")
QUALITY = ("accepted", "review", "rejected")


def _rows(n_points: int = 30) -> list[tuple]:
    """Index rows (SAMPLE_FIELDS), with months missing here and there."""
    rows = []
    for p in range(1, n_points + 1):
        for month in (6, 7, 8, 9):
            if (p * month) % 5 == 0:
                continue
            label, province = LABELS[p % 3], ("AB", "MB")[p % 2]
            sid = f"POINT_{p}_2019{month:02d}_{province}_{label}"
            rows.append((sid, p * 1_000_000 + 201900 + month, p, 2019, month, province, label,
                         ("training", "test")[p % 2], f"tif/2019/{label}/{sid}.tif"))
    return rows


def _quality(sid: str) -> str:
    return QUALITY[sum(map(ord, sid)) % 3]


@pytest.fixture
def indexed(store):  # noqa: F811
    rows = _rows()
    random.Random(0).shuffle(rows)  # the index orders them, not the caller
    scores = [SimpleNamespace(sample_id=r[0], status=_quality(r[0]), reasons=[f"why {r[0]}"],
                              metrics={"cloud": 0.5}) for r in rows]
    store.save_quality((q, "fp") for q in scores)
    store.index_samples(iter(rows), "v1")
    return store, sorted(rows, key=lambda r: r[1])


def _expected(rows, decisions: dict[str, str]) -> dict:
    q = Counter(_quality(r[0]) for r in rows)
    final = Counter(
        {"accept": "accepted", "reject": "rejected"}.get(decisions.get(r[0], ""), _quality(r[0]))
        for r in rows)
    return {
        "total": len(rows), "quality": {k: q[k] for k in QUALITY},
        "decided": {k: list(decisions.values()).count(k) for k in ("accept", "reject")},
        "to_review": sum(1 for r in rows if _quality(r[0]) == "review" and r[0] not in decisions),
        "final": {k: final[k] for k in QUALITY},
    }


def test_pages_follow_the_review_order_and_filters(indexed):
    db, rows = indexed
    total, page = db.page({}, 0, 10)
    assert total == len(rows) and [r["id"] for r in page] == [r[0] for r in rows[:10]]
    total, page = db.page({}, len(rows) - 3, 10)
    assert [r["id"] for r in page] == [r[0] for r in rows[-3:]]
    corn_july = [r[0] for r in rows if r[6] == "CORN" and r[4] == 7]
    total, page = db.page({"label": "CORN", "month": 7}, 0, 1000)
    assert total == len(corn_july) and [r["id"] for r in page] == corn_july
    review_mb = [r[0] for r in rows if _quality(r[0]) == "review" and r[5] == "MB"]
    total, page = db.page({"quality": "review", "province": "MB"}, 2, 5)
    assert total == len(review_mb) and [r["id"] for r in page] == review_mb[2:7]
    first = page[0]
    assert json.loads(first["reasons"]) == [f"why {first['id']}"] and first["decision"] is None
    assert db.facets() == {"label": list(LABELS), "year": [2019], "month": [6, 7, 8, 9],
                              "province": ["AB", "MB"]}


def test_decisions_and_undos_move_counts_and_filters(indexed):
    db, rows = indexed
    ids = [r[0] for r in rows]
    assert db.progress() == {**_expected(rows, {}), "reviewers": {}}
    db.decide("d1", "alice", ids[:3], "reject", "")
    db.decide("d2", "bob", [ids[1], ids[5]], "accept", "")
    db.decide("d2", "bob", [ids[1], ids[5]], "accept", "")  # a retry: counted once
    decisions = {ids[0]: "reject", ids[1]: "accept", ids[2]: "reject", ids[5]: "accept"}
    assert db.progress() == {**_expected(rows, decisions), "reviewers": {"alice": 2, "bob": 2}}
    total, page = db.page({"decision": "accept"}, 0, 10)
    assert total == 2 and [r["id"] for r in page] == [ids[1], ids[5]]
    assert page[0]["reviewer"] == "bob"
    assert db.page({"decision": "none"}, 0, 1)[0] == len(rows) - 4
    db.undo("u1", "bob")  # ids[1] back to alice's rejection, ids[5] undecided
    decisions = {ids[0]: "reject", ids[1]: "reject", ids[2]: "reject"}
    assert db.progress() == {**_expected(rows, decisions), "reviewers": {"alice": 3}}
    assert db.page({"decision": "reject", "label": rows[1][6]}, 0, 10)[0] == sum(
        1 for r in rows[:3] if r[6] == rows[1][6])
    db.decide("d3", "carol", ["NOT_INDEXED"], "accept", "")  # recorded, not counted
    assert db.progress()["decided"] == {"accept": 0, "reject": 3}


def test_a_new_index_drops_vanished_samples_and_recounts(indexed):
    db, rows = indexed
    db.decide("d1", "alice", [rows[0][0], rows[1][0]], "accept", "")
    db.index_samples(iter(rows[1:]), "v2")  # the first sample's file is gone
    assert db.page({}, 0, 1000)[0] == len(rows) - 1
    assert db.progress()["decided"] == {"accept": 1, "reject": 0}
    assert db.sample_path(rows[0][0]) is None and db.indexed([rows[0][0], rows[1][0]]) == {rows[1][0]}
    db.index_samples(iter(()), "v2")  # same version: the rows are not read again
    assert db.page({}, 0, 1)[0] == len(rows) - 1
    assert [r["id"] for r in db.same_point(rows[5][0])] == [r[0] for r in rows if r[2] == rows[5][2]]


def test_tallies_stay_exact_under_concurrent_reviewers(indexed):
    db, rows = indexed
    ids = [r[0] for r in rows]
    errors = []

    def reviewer(k: int) -> None:
        rng = random.Random(k)
        try:
            for i in range(25):
                if rng.random() < 0.2:
                    try:
                        db.undo(f"u{k}-{i}", f"rev{k}")
                    except Exception as e:  # nothing to undo yet
                        assert "no decision left" in str(e)
                    continue
                db.decide(f"d{k}-{i}", f"rev{k}", [rng.choice(ids)], rng.choice(["accept", "reject"]), "")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reviewer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    current = {sid: d["decision"] for sid, d in db.decisions().items()}
    by_reviewer = Counter(d["reviewer"] for d in db.decisions().values())
    assert db.progress() == {**_expected(rows, current), "reviewers": dict(by_reviewer)}
    for label in LABELS:  # counted by the tallies, by class
        for decision in ("none", "accept", "reject"):
            assert db.page({"label": label, "decision": decision}, 0, 1)[0] == sum(
                1 for r in rows if r[6] == label and current.get(r[0], "none") == decision)


def test_the_app_on_postgresql(dataset):
    """The review app's lists, decisions and counters on a PostgreSQL store."""
    from tests.curate.test_store import POSTGRES_URL

    if not POSTGRES_URL:
        pytest.skip("set CROPLAND_TEST_POSTGRES_URL to run the app on PostgreSQL")
    psycopg = pytest.importorskip("psycopg")
    from fastapi.testclient import TestClient

    from cropland.curate.app import create_app
    from cropland.curate.store import Store

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS reviewers, audit, decisions, quality, samples, tallies, class_tallies, meta")
    token = Store(POSTGRES_URL).add_reviewer("alice")
    with TestClient(create_app(dataset, POSTGRES_URL)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.get("/api/samples").json()["total"] == 12
        corn = client.get("/api/samples", params={"label": "CORN", "limit": 4}).json()
        assert corn["total"] == 6 and [i["id"] for i in corn["items"]] == [
            "POINT_2_201906_MB_CORN", "POINT_2_201907_MB_CORN", "POINT_2_201908_MB_CORN",
            "POINT_4_201906_ON_CORN"]
        answer = client.post("/api/decisions", json={
            "decision_id": "pg-000001", "sample_ids": ["POINT_2_201908_MB_CORN"],
            "decision": "reject", "reason": "stripes"}).json()
        assert answer["items"][0]["status"] == "rejected"
        assert answer["progress"]["decided"] == {"accept": 0, "reject": 1}
        assert answer["progress"] == client.get("/api/progress").json()
        assert client.get("/api/samples", params={"decision": "none"}).json()["total"] == 11
        detail = client.get("/api/samples/POINT_2_201908_MB_CORN").json()
        assert detail["decision"] == "reject" and len(detail["same_point"]) == 3


def test_a_store_from_before_class_tallies_is_recounted_and_reindexed(tmp_path):
    import sqlite3

    from cropland.curate.store import Store

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the tallies of an earlier version, without classes
        conn.execute("CREATE TABLE tallies (quality TEXT, decision TEXT, reviewer TEXT, n BIGINT, "
                     "PRIMARY KEY (quality, decision, reviewer))")
        conn.execute("INSERT INTO tallies VALUES ('review', 'none', '', 99)")
    rows = _rows()
    db = Store(path)
    db.index_samples(iter(rows), "v1")
    db.index_samples(iter(rows[1:]), "v2")  # rebuilt: its indexes dropped and made again
    assert db.page({"label": "CORN"}, 0, 1)[0] == sum(r[6] == "CORN" for r in rows[1:])
    assert db.progress()["total"] == len(rows) - 1
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                              "AND tbl_name = 'samples' AND sql IS NOT NULL")}
    assert "tallies" not in tables
    assert indexes == {"samples_by_key", "samples_by_point", "samples_by_label", "samples_by_year",
                       "samples_by_month", "samples_by_province", "samples_by_quality",
                       "samples_by_decision"}
