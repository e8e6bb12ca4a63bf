"""The review page in headless Chromium (Debian's build), driven by Playwright."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed: "
                       "apt-get install -y chromium (see .ci/apt-packages-curate.txt)"),
    pytest.mark.slow,
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
FIRST, SECOND, THIRD, FOURTH = (
    "POINT_1_201906_AB_BARLEY", "POINT_1_201907_AB_BARLEY", "POINT_1_201908_AB_BARLEY",
    "POINT_2_201906_MB_CORN")


@pytest.fixture
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        yield page
        browser.close()
        assert errors == [], errors


def sign_in(page, token: str) -> None:
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_selector("#grid .cell >> nth=11")


def cell(page, sid: str):
    return page.locator(f'#grid .cell[data-id="{sid}"]')


def expect_title(page, sid: str) -> None:
    expect()(page.locator("#title")).to_have_text(sid)


def expect():
    return pytest.importorskip("playwright.sync_api").expect


def test_wrong_token_shows_the_error(page):
    page.fill("#token", "nope")
    page.press("#token", "Enter")
    page.wait_for_selector("#login-error:has-text('invalid or revoked token')")
    assert page.locator("#grid .cell").count() == 0


def test_keyboard_review_survives_reload(page, tokens, db):
    from cropland.curate.store import Store

    sign_in(page, tokens["alice"])
    expect_title(page, FIRST)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.keyboard.press("a")
    expect_title(page, SECOND)  # accepting moves on
    page.wait_for_selector('[data-counter="accepted by reviewers"] b:has-text("1")')
    lists = [u for u in requests if "/api/progress" in u or "/api/samples?" in u]
    assert lists == []  # grid and counters updated from the decision's answer
    page.keyboard.press("r")
    expect_title(page, THIRD)
    page.keyboard.press("a")
    expect_title(page, FOURTH)
    page.wait_for_selector(f'#grid .cell.decided[data-id="{THIRD}"]')
    page.keyboard.press("u")  # undo the last accept: back on that sample, undecided
    page.wait_for_selector(f'#grid .cell:not(.decided)[data-id="{THIRD}"]')
    expect_title(page, THIRD)
    page.keyboard.press("ArrowRight")
    expect_title(page, FOURTH)
    page.keyboard.press("n")
    expect_title(page, "POINT_2_201907_MB_CORN")
    page.keyboard.press("p")
    expect_title(page, FOURTH)
    page.keyboard.press("ArrowLeft")
    expect_title(page, THIRD)

    decisions = Store(db).decisions()
    assert {k: v["decision"] for k, v in decisions.items()} == {FIRST: "accept", SECOND: "reject"}
    assert decisions[SECOND]["reason"].startswith("near-duplicate")  # the automatic reasons

    page.reload()  # the token stays in localStorage: no sign-in again
    page.wait_for_selector("#grid .cell >> nth=11")
    assert not page.locator("#login").evaluate("d => d.open")
    assert cell(page, FIRST).get_attribute("data-status") == "accepted"
    assert cell(page, SECOND).get_attribute("data-status") == "rejected"
    assert "decided" not in cell(page, THIRD).get_attribute("class")
    assert page.locator('[data-counter="accepted by reviewers"] b').text_content() == "1"
    assert page.locator('[data-counter="rejected by reviewers"] b').text_content() == "1"


def test_filters_bulk_and_images(page, tokens, db):
    from cropland.curate.store import Store

    sign_in(page, tokens["bob"])
    page.select_option("#filters [name=label]", "CORN")
    cells = page.locator("#grid .cell")
    expect()(cells).to_have_count(6)
    page.select_option("#filters [name=quality]", "review")
    expect()(cells).to_have_count(1)
    page.select_option("#filters [name=quality]", "")
    expect()(cells).to_have_count(6)
    cell(page, "POINT_4_201906_ON_CORN").click(modifiers=["Control"])
    cell(page, "POINT_4_201909_ON_CORN").click(modifiers=["Control"])
    assert page.text_content("#selection") == "2 selected"
    page.click("[data-bulk=reject]")
    page.wait_for_selector('#grid .cell[data-id="POINT_4_201909_ON_CORN"][data-status="rejected"]')
    decided = Store(db).decisions()
    assert sorted(decided) == ["POINT_4_201906_ON_CORN", "POINT_4_201909_ON_CORN"]
    assert {d["reviewer"] for d in decided.values()} == {"bob"}
    # the large view shows three decoded images and the point's other months
    for img in ("#img-rgb", "#img-index", "#img-mask"):
        expect()(page.locator(img)).to_have_js_property("naturalWidth", 32)
    assert page.locator("#months .cell").count() == 3
    page.select_option("#index-type", "NDWI")
    expect()(page.locator("#img-index")).to_have_js_property("naturalWidth", 32)
    assert re.match(r"\d+-\d+ of 6", page.text_content("#range"))
