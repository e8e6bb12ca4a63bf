"""Tokens, path traversal and malformed input: refused with a 4xx and a clear message."""

from __future__ import annotations

import json
import random
import shlex
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
    assert (
        client.post("/api/undo", content=b"\xff\xfe", headers={"Content-Type": "application/json"}).status_code == 422
    )


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


def _raw_request(server: str, head: str, body: bytes, wait: float = 5.0) -> bytes:
    """Send the request line and headers, then ``body`` (however long ``Content-Length`` says
    the body is); return what the server answered within ``wait`` seconds."""
    import socket

    host, port = server.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        try:
            while b"}" not in answer and (data := sock.recv(65536)):  # up to the JSON's end
                answer += data
        except TimeoutError:
            pass
    return answer


def test_an_unauthenticated_huge_body_is_refused_before_it_is_read(server):
    head = ("POST /api/decisions HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Content-Length: 200000000\n")
    answer = _raw_request(server, head, b"[" * 65536)  # 64 KiB sent of the 200 MB announced
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"missing token" in answer


def test_an_oversized_body_is_413_with_or_without_a_declared_length(server, tokens):
    auth = f"Authorization: Bearer {tokens['alice']}\n"
    head = f"POST /api/decisions HTTP/1.1\nHost: x\n{auth}Content-Type: application/json\n"
    answer = _raw_request(server, head + "Content-Length: 200000000\n", b"[" * 65536)
    assert answer.startswith(b"HTTP/1.1 413") and b"request body over 1048576 bytes" in answer
    chunk = b"[" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))  # 1.25 MiB
    answer = _raw_request(server, head + "Transfer-Encoding: chunked\n", chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_body_under_the_cap_still_works(client):
    ids = [f"POINT_{p}_201906_MB_CORN" for p in range(900)]  # ~25 KB, unknown samples
    r = client.post("/api/decisions", json={"decision_id": uuid.uuid4().hex, "decision": "accept",
                                            "sample_ids": ids})
    assert r.status_code == 404 and "POINT_0_201906_MB_CORN" in r.json()["detail"]


def test_audit_paging_beyond_the_largest_sequence_is_422(client):
    r = client.get("/api/audit", params={"before": 2**63})
    assert r.status_code == 422 and "before" in r.json()["detail"]
    assert client.get("/api/audit", params={"before": 2**63 - 1}).status_code == 200


def test_a_sample_damaged_after_start_is_409(dataset, db, tokens, tmp_path):
    import shutil

    from fastapi.testclient import TestClient

    from cropland.curate.app import create_app

    copy = shutil.copytree(dataset, tmp_path / "copy")
    app = create_app(copy, db)
    tif = next((copy / "tif").rglob(f"{SAMPLE}.tif"))
    tif.write_bytes(tif.read_bytes()[:300])  # truncated after the app started
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {tokens['alice']}"
        r = c.get(f"/api/samples/{SAMPLE}/image/RGB")
        assert r.status_code == 409 and "the dataset changed since the app started" in r.json()["detail"]
        assert "corrupt or incomplete" in r.json()["detail"]
        tif.unlink()
        r = c.get(f"/api/samples/{SAMPLE}/image/NDVI")
        assert r.status_code == 409 and "does not exist" in r.json()["detail"]


def test_a_full_disk_is_503_and_records_nothing(dataset, scored_db, tmp_path):
    """The decision store on a 1 MiB file system, filled up: a decision is refused with 503."""
    import sys

    from tests.limits import run_on_own_disk

    disk = tmp_path / "disk"
    script = f"""
import json, os, shutil, uuid
from pathlib import Path
from fastapi.testclient import TestClient
from cropland.curate.app import create_app
from cropland.curate.store import Store

db = Path({str(disk)!r}) / "curate.sqlite"
shutil.copy({str(scored_db)!r}, db)
token = Store(db).add_reviewer("alice")
app = create_app({str(dataset)!r}, db)
filler = os.open(db.parent / "filler", os.O_WRONLY | os.O_CREAT)
try:
    while True:
        os.write(filler, bytes(4096))
except OSError:
    os.close(filler)
with TestClient(app) as c:
    c.headers["Authorization"] = "Bearer " + token
    answers = [c.post("/api/decisions", json={{"decision_id": uuid.uuid4().hex, "decision": "reject",
               "reason": "x" * 400, "sample_ids": [{SAMPLE!r}]}}) for _ in range(50)]
    bad = [a for a in answers if a.status_code != 200]
    print(json.dumps([bad[0].status_code, bad[0].json()["detail"]]))
"""
    done = run_on_own_disk(disk, "size=1m", f"{sys.executable} -c {shlex.quote(script)}")
    assert done.returncode == 0, done.stderr[-2000:]
    status, detail = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 503 and "cannot read or write its files" in detail and "disk is full" in detail
