"""Tokens, path traversal and malformed input: refused with a 4xx and a clear message."""

from __future__ import annotations

import random
import string
import urllib.parse
import uuid

import pytest

SAMPLE = "POINT_2_201906_MB_CORN"
PROTECTED = [
    ("GET", "/api/me"), ("GET", "/api/samples"), ("GET", "/api/progress"),
    ("GET", "/api/facets"), ("GET", "/api/audit"), ("GET", f"/api/samples/{SAMPLE}"),
    ("GET", f"/api/samples/{SAMPLE}/image/RGB"), ("POST", "/api/decisions"), ("POST", "/api/undo"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_is_401(client, method, path):
    del client.headers["Authorization"]
    r = client.request(method, path, json={})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "cropland curate token add" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_token_is_403(client, method, path):
    client.headers["Authorization"] = "Bearer not-a-real-token"
    r = client.request(method, path, json={})
    assert r.status_code == 403 and "invalid or revoked token" in r.json()["detail"]


def test_other_schemes_are_refused(client, tokens):
    client.headers["Authorization"] = f"Basic {tokens['alice']}"
    assert client.get("/api/me").status_code == 401


def test_revoked_token_is_403(client, db):
    from cropland.curate.store import Store

    assert client.get("/api/me").status_code == 200
    Store(db).revoke_reviewer("alice")
    assert client.get("/api/me").status_code == 403


def test_tokens_are_stored_hashed(db, tokens):
    raw = db.read_bytes() + (db.parent / (db.name + "-wal")).read_bytes()
    for token in tokens.values():
        assert token.encode() not in raw


TRAVERSALS = [
    "..%2F..%2Fetc%2Fpasswd",
    "..%2Fconfig.yaml",
    "%2E%2E%2Fsplits.json",
    "POINT_2_201906_MB_CORN%2F..%2F..%2Fconfig.yaml",
    "POINT_2_201906_MB_CORN%00.tif",
    "..%5C..%5Cwindows",
    "POINT_2_201906_MB_CORN.tif",
    "%252e%252e%252fconfig.yaml",
    "POINT_2_201906_MB_corn",
    "POINT_99_201906_MB_CORN",  # well-formed but not in the dataset
    "POINT_2_201906_MB_CORN_RGB",
    "/etc/passwd",
]


@pytest.mark.parametrize("sid", TRAVERSALS)
@pytest.mark.parametrize("suffix", ["", "/image/RGB", "/image/MASK"])
def test_path_traversal_never_reaches_a_file(client, sid, suffix):
    r = client.get(f"/api/samples/{sid}{suffix}")
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "root:" not in r.text and "render" not in r.text


def test_unknown_image_kind_is_422(client):
    r = client.get(f"/api/samples/{SAMPLE}/image/..%2F..%2Fconfig.yaml")
    assert r.status_code in (404, 422)
    r = client.get(f"/api/samples/{SAMPLE}/image/B4")
    assert r.status_code == 422 and "kind" in r.json()["detail"]


def test_static_files_stay_in_their_folder(client):
    for path in ["/static/..%2F..%2F..%2Fpyproject.toml", "/static/../app.py", "/static/%2e%2e/app.py"]:
        r = client.get(path)
        assert r.status_code == 404 and "import" not in r.text


def test_decision_on_unknown_or_malformed_ids(client):
    body = {"decision_id": uuid.uuid4().hex, "decision": "accept"}
    r = client.post("/api/decisions", json={**body, "sample_ids": ["POINT_99_201906_MB_CORN"]})
    assert r.status_code == 404 and "POINT_99_201906_MB_CORN" in r.json()["detail"]
    r = client.post("/api/decisions", json={**body, "sample_ids": ["../../config.yaml"]})
    assert r.status_code == 422 and "sample_ids.0" in r.json()["detail"]


MALFORMED = [
    ("not json", "invalid request"),
    ('{"decision_id": "abcdefgh1", "sample_ids": ["POINT_2_201906_MB_CORN"], "decision": "maybe"}',
     "body.decision"),
    ('{"decision_id": "short", "sample_ids": ["POINT_2_201906_MB_CORN"], "decision": "accept"}',
     "body.decision_id"),
    ('{"decision_id": "abcdefgh2", "sample_ids": [], "decision": "accept"}', "body.sample_ids"),
    ('{"decision_id": "abcdefgh3", "sample_ids": "POINT_2_201906_MB_CORN", "decision": "accept"}',
     "body.sample_ids"),
    (('{"decision_id": "abcdefgh4", "sample_ids": ["POINT_2_201906_MB_CORN"], "decision": '
      '"accept", "extra": 1}'), "body.extra"),
    (('{"decision_id": "abcdefgh5", "sample_ids": ["POINT_2_201906_MB_CORN", '
      '"POINT_2_201906_MB_CORN"], "decision": "accept"}'), "each once"),
    (('{"decision_id": "abcdefgh6", "sample_ids": ["POINT_2_201906_MB_CORN"], "decision": '
      '"accept", "reason": "' + "x" * 600 + '"}'), "body.reason"),
    ("[]", "invalid request"),
    ('{"decision_id": 12345678, "sample_ids": ["POINT_2_201906_MB_CORN"], "decision": "accept"}',
     "body.decision_id"),
]


@pytest.mark.parametrize(("raw", "mentions"), MALFORMED)
def test_malformed_decisions_are_4xx_with_a_message(client, raw, mentions):
    r = client.post("/api/decisions", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert mentions in r.json()["detail"]


@pytest.mark.parametrize("params", [
    {"year": "twenty"}, {"month": 13}, {"month": 0}, {"limit": 0}, {"limit": 10**6},
    {"offset": -1}, {"quality": "great"}, {"decision": "yes"}, {"label": "../x"},
    {"province": "ZZZ"}, {"year": "1e999"},
])
def test_malformed_filters_are_422(client, params):
    r = client.get("/api/samples", params=params)
    assert r.status_code == 422 and r.json()["detail"].startswith("invalid request: query.")


def test_undo_malformed(client):
    assert client.post("/api/undo", json={}).status_code == 422
    assert client.post("/api/undo", content=b"\xff\xfe", headers={"Content-Type": "application/json"}).status_code == 422


def test_random_ids_and_queries_never_give_500(client):
    """200 random sample ids, image kinds and filter values: always a 4xx, or a 200 list."""
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + "._-/%\\~:;'\"<>{}[]| \t\x00é"
    for _ in range(200):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        quoted = urllib.parse.quote(junk, safe="")
        for path in (f"/api/samples/{quoted}", f"/api/samples/{SAMPLE}/image/{quoted}",
                     f"/api/samples/POINT_{quoted}_201906_MB_CORN/image/RGB"):
            assert 400 <= client.get(path).status_code < 500, path
        r = client.get("/api/samples", params={rng.choice(["label", "year", "month", "province",
                                                           "quality", "offset"]): junk})
        assert r.status_code in (200, 422), junk
