"""Screenshot of the review page (docs/curate.png), taken from the real app in Chromium.

Serves a copy-free view of DATASET with a throw-away decision store, signs in, records a
few decisions so the counters move, opens a sample and saves the page.

    python benchmarks/curate_screenshot.py DATASET [--out docs/curate.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from curate_load import free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "curate.png")
    parser.add_argument("--decisions", type=int, default=6, help="samples to decide first")
    args = parser.parse_args()

    from playwright.sync_api import expect, sync_playwright

    from cropland.curate.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "screenshot.sqlite"
        token = Store(db).add_reviewer("alice")
        port = free_port()
        server = start_server(args.dataset, db, port)
        base = f"http://127.0.0.1:{port}"
        try:
            headers = {"Authorization": f"Bearer {token}"}
            items = httpx.get(f"{base}/api/samples", headers=headers).json()["items"]
            for i, item in enumerate(items[: args.decisions]):
                httpx.post(f"{base}/api/decisions", headers=headers, json={
                    "decision_id": uuid.uuid4().hex, "sample_ids": [item["id"]],
                    "decision": "reject" if i % 3 == 2 else "accept", "reason": ""})
            rest = items[args.decisions:]
            review = [i for i in rest if i["quality"] == "review"] + [i for i in rest if i["quality"] == "rejected"]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(base)
                page.fill("#token", token)
                page.press("#token", "Enter")
                page.wait_for_selector("#grid .cell")
                target = review[0]["id"] if review else items[0]["id"]
                page.locator(f'#grid .cell[data-id="{target}"]').click()
                expect(page.locator("#title")).to_have_text(target)
                for img in ("#img-rgb", "#img-index", "#img-mask"):
                    expect(page.locator(img)).not_to_have_js_property("naturalWidth", 0)
                page.wait_for_timeout(500)  # let the grid's lazy thumbnails arrive
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
    print(args.out)


if __name__ == "__main__":
    main()
