"""The JSON API on the fake dataset, through FastAPI's TestClient."""

from __future__ import annotations

import io
import uuid

import numpy as np
import rasterio
from PIL import Image

CLOUDY = "POINT_1_201908_AB_BARLEY"
CLEAN = "POINT_2_201906_MB_CORN"
STRIPED = "POINT_2_201908_MB_CORN"


def decide(client, ids, decision, reason="", decision_id=None):
    body = {"decision_id": decision_id or uuid.uuid4().hex, "sample_ids": ids,
            "decision": decision, "reason": reason}
    return client.post("/api/decisions", json=body)


def test_me_names_the_reviewer(client):
    r = client.get("/api/me")
    assert r.status_code == 200
    assert r.json()["reviewer"] == "alice"


def test_list_and_filters(client):
    all_items = client.get("/api/samples").json()
    assert all_items["total"] == 12
    corn = client.get("/api/samples", params={"label": "CORN"}).json()
    assert {i["id"] for i in corn["items"]} == {
        "POINT_2_201906_MB_CORN", "POINT_2_201907_MB_CORN", "POINT_2_201908_MB_CORN",
        "POINT_4_201906_ON_CORN", "POINT_4_201907_ON_CORN", "POINT_4_201909_ON_CORN"}
    july_on = client.get("/api/samples", params={"month": 7, "province": "ON"}).json()
    assert [i["id"] for i in july_on["items"]] == ["POINT_4_201907_ON_CORN"]
    rejected = client.get("/api/samples", params={"quality": "rejected"}).json()
    assert {i["id"] for i in rejected["items"]} == {
        CLOUDY, "POINT_2_201907_MB_CORN", "POINT_3_201907_SK_OAT", "POINT_4_201907_ON_CORN"}
    page = client.get("/api/samples", params={"offset": 10, "limit": 5}).json()
    assert page["total"] == 12 and len(page["items"]) == 2
    assert client.get("/api/samples", params={"year": 2018}).json()["total"] == 0


def test_split_comes_from_splits_json(client):
    items = {i["id"]: i for i in client.get("/api/samples").json()["items"]}
    assert items[CLEAN]["split"] == ["training", "validation", "test"][2 % 3]
    assert items["POINT_3_201906_SK_OAT"]["split"] == "training"


def test_detail_has_metrics_and_other_months(client):
    d = client.get(f"/api/samples/{STRIPED}").json()
    assert d["quality"] == "review"
    assert any(r.startswith("stripes") for r in d["reasons"])
    assert d["metrics"]["stripe"] > 15
    assert [o["id"] for o in d["same_point"]] == [
        "POINT_2_201906_MB_CORN", "POINT_2_201907_MB_CORN", "POINT_2_201908_MB_CORN"]


def test_rgb_image_matches_the_geotiff(client, dataset):
    r = client.get(f"/api/samples/{CLEAN}/image/RGB")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    png = np.asarray(Image.open(io.BytesIO(r.content)))
    with rasterio.open(dataset / "tif/2019/CORN" / f"{CLEAN}.tif") as src:
        bands = list(src.descriptions)
        rgb = np.stack([src.read(bands.index(b) + 1) for b in ("B4", "B3", "B2")], axis=-1)
    expected = np.clip(np.rint(np.nan_to_num(rgb) / 0.3 * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(png, expected)


def test_mask_image_marks_nodata_red(client, dataset):
    r = client.get("/api/samples/POINT_2_201907_MB_CORN/image/MASK")
    mask = np.asarray(Image.open(io.BytesIO(r.content)))
    red = (mask == (220, 30, 30)).all(axis=-1)
    assert red[20:24].all() and red.sum() == 128  # the painted no-data block, nothing else
    with rasterio.open(dataset / "tif/2019/CORN/POINT_2_201907_MB_CORN.tif") as src:
        valid = src.read(19)
    grey = (70 + 20 * valid).astype(np.uint8)  # 1 observation -> 90, 8 or more -> 230
    np.testing.assert_array_equal(mask[~red], np.repeat(grey[~red][:, None], 3, axis=1))


def test_index_image_is_grey(client):
    png = np.asarray(Image.open(io.BytesIO(client.get(f"/api/samples/{CLEAN}/image/NDVI").content)))
    assert png.shape == (32, 32, 3)
    assert (png[..., 0] == png[..., 1]).all() and (png[..., 1] == png[..., 2]).all()
    assert png.mean() > 127  # vegetation: NDVI > 0


def test_decision_changes_status_and_progress(client):
    before = client.get("/api/progress").json()
    assert before["total"] == 12 and before["quality"] == {"accepted": 4, "review": 4, "rejected": 4}
    r = decide(client, [STRIPED], "reject", "stripe artefact")
    assert r.status_code == 200 and r.json()["applied"] is True
    answer = r.json()  # what the page needs to update, without reading lists again
    assert [(i["id"], i["status"], i["reviewer"]) for i in answer["items"]] == [
        (STRIPED, "rejected", "alice")]
    assert answer["progress"] == client.get("/api/progress").json()
    item = client.get(f"/api/samples/{STRIPED}").json()
    assert (item["status"], item["decision"], item["reviewer"]) == ("rejected", "reject", "alice")
    assert item["decision_reason"] == "stripe artefact"
    after = client.get("/api/progress").json()
    assert after["decided"] == {"accept": 0, "reject": 1}
    assert after["to_review"] == before["to_review"] - 1
    assert after["reviewers"] == {"alice": 1}
    undecided = client.get("/api/samples", params={"decision": "none"}).json()
    assert undecided["total"] == 11


def test_retry_is_not_applied_twice(client):
    first = decide(client, [CLEAN], "accept", decision_id="retry-0001")
    again = decide(client, [CLEAN], "accept", decision_id="retry-0001")
    assert first.json()["applied"] is True and again.json()["applied"] is False
    assert again.json()["entries"] == first.json()["entries"]
    audit = client.get("/api/audit").json()["entries"]
    assert [e["decision_id"] for e in audit].count("retry-0001") == 1


def test_reused_id_for_another_change_is_a_conflict(client):
    decide(client, [CLEAN], "accept", decision_id="reused-0001")
    r = decide(client, [CLEAN], "reject", decision_id="reused-0001")
    assert r.status_code == 409 and "already used" in r.json()["detail"]


def test_bulk_then_undo_reverts_the_whole_bulk(client):
    ids = [CLEAN, STRIPED, CLOUDY]
    decide(client, [CLEAN], "reject")
    assert decide(client, ids, "accept").status_code == 200
    assert client.get("/api/progress").json()["decided"] == {"accept": 3, "reject": 0}
    r = client.post("/api/undo", json={"decision_id": uuid.uuid4().hex})
    assert r.status_code == 200 and len(r.json()["entries"]) == 3
    progress = client.get("/api/progress").json()
    assert progress["decided"] == {"accept": 0, "reject": 1}  # CLEAN back to its rejection
    assert client.get(f"/api/samples/{CLEAN}").json()["decision"] == "reject"


def test_undo_with_nothing_left_is_a_conflict(client):
    r = client.post("/api/undo", json={"decision_id": uuid.uuid4().hex})
    assert r.status_code == 409
    assert r.json()["detail"] == "alice has no decision left to undo"


def test_audit_log_records_everything(client, tokens):
    decide(client, [CLEAN], "accept")
    client.headers["Authorization"] = f"Bearer {tokens['bob']}"
    decide(client, [CLEAN], "reject", "cloud edge")
    client.post("/api/undo", json={"decision_id": uuid.uuid4().hex})
    entries = client.get("/api/audit").json()["entries"]
    assert [(e["action"], e["reviewer"]) for e in entries] == [
        ("undo", "bob"), ("reject", "bob"), ("accept", "alice")]
    assert entries[1]["undone_by"] == entries[0]["seq"]
    assert client.get(f"/api/samples/{CLEAN}").json()["decision"] == "accept"


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "cropland curate" in page.text
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no CDN
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "Authorization" in js.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
