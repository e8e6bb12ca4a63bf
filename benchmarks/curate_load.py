"""Load test of the review app: concurrent reviewers working through a real server as the page does.

Starts ``cropland curate serve`` (uvicorn) on loopback in its own process, gives each
reviewer a token, and lets every reviewer work from its own thread over a keep-alive
connection, as the review page does: it loads the filters, the counters and a page of its
class's samples still to decide, then for each decision opens the sample (its detail, with
the point's other months) and accepts or rejects it (the answer carries the changed sample and
the counters), now and then undoes its last change, and loads the next page when the page is
done. A share of the changes is sent twice with the same id, as a client does after a lost
answer. Afterwards the audit log must hold every change exactly once, and the counters the
app shows must equal a recount of the decisions. Writes its section of docs/benchmarks.md.

    python benchmarks/curate_load.py                        # 40 fake samples
    python benchmarks/curate_load.py --dataset DATASET      # e.g. a synthetic release

Quality scores are computed once into ``DATASET/curate.sqlite`` (the app's default store);
the run uses a copy of it, or ``--db postgresql://...``: an empty PostgreSQL database into
which the scores are copied.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from _doc import provenance, rss_peak, write_section  # noqa: E402

PAGE = 200


@dataclass
class Result:
    """Latencies (seconds) by request kind, and the change ids sent."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    change_ids: list[str] = field(default_factory=list)
    decisions: int = 0
    undos: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Result) -> None:
        for kind, values in other.latencies.items():
            self.latencies[kind] += values
        self.change_ids += other.change_ids
        self.decisions += other.decisions
        self.undos += other.undos
        self.retries += other.retries
        self.errors += other.errors


class Reviewer:
    """One reviewer's session: timed requests on a keep-alive connection."""

    def __init__(self, base_url: str, token: str, result: Result):
        self.client = httpx.Client(base_url=base_url, timeout=60,
                                   headers={"Authorization": f"Bearer {token}"})
        self.result = result

    def get(self, kind: str, path: str, **params) -> dict:
        start = time.perf_counter()
        r = self.client.get(path, params=params)
        self.result.latencies[kind].append(time.perf_counter() - start)
        if r.status_code != 200:
            self.result.errors.append(f"GET {path}: {r.status_code} {r.text[:200]}")
            return {}
        return r.json()

    def change(self, kind: str, path: str, body: dict, sends: int) -> dict:
        """POST a change ``sends`` times with one id; the first must apply, the others not."""
        body = {**body, "decision_id": uuid.uuid4().hex}
        answer: dict = {}
        for attempt in range(sends):
            start = time.perf_counter()
            r = self.client.post(path, json=body)
            self.result.latencies[kind].append(time.perf_counter() - start)
            if r.status_code == 409 and kind == "undo":  # nothing left to undo
                return {}
            if r.status_code != 200 or r.json()["applied"] != (attempt == 0):
                self.result.errors.append(f"POST {path}: {r.status_code} {r.text[:200]}")
                return {}
            answer = r.json()
        self.result.change_ids.append(body["decision_id"])
        self.result.retries += sends - 1
        return answer


def reviewer_run(base_url: str, token: str, label: str | None, n: int, retry_share: float,
                 undo_share: float, seed: int, result: Result, lock: threading.Lock) -> None:
    """One reviewer: ``n`` decisions on its class's samples still to decide, in page order."""
    rng, mine = random.Random(seed), Result()
    me = Reviewer(base_url, token, mine)
    filters = {"decision": "none", "label": label} if label else {}  # None: every sample, again
    me.get("start", "/api/me")
    me.get("start", "/api/facets")
    me.get("start", "/api/progress")
    queue: list[str] = []
    for _ in range(n):
        if not queue:
            page = me.get("page", "/api/samples", limit=PAGE, **filters)
            queue = [item["id"] for item in page.get("items", [])]
            if not queue:
                mine.errors.append(f"no sample left to decide for {label}")
                break
        sid = queue.pop(0)
        me.get("detail", f"/api/samples/{sid}")
        sends = 2 if rng.random() < retry_share else 1
        answer = me.change("decision", "/api/decisions", {
            "sample_ids": [sid], "decision": rng.choice(["accept", "reject"]), "reason": "load test",
        }, sends)
        if answer and [i["id"] for i in answer["items"]] != [sid]:
            mine.errors.append(f"the answer to a decision on {sid} lacks it")
        mine.decisions += 1
        if rng.random() < undo_share and me.change("undo", "/api/undo", {}, 1):
            mine.undos += 1
    me.client.close()
    with lock:
        result.merge(mine)


def run_load(base_url: str, tokens: list[str], labels: list[str | None], per_reviewer: int,
             retry_share: float = 0.05, undo_share: float = 0.02) -> tuple[Result, float]:
    """Run every reviewer at once (reviewer i takes ``labels[i % len(labels)]``)."""
    result, lock = Result(), threading.Lock()
    threads = [
        threading.Thread(target=reviewer_run, args=(
            base_url, t, labels[i % len(labels)], per_reviewer, retry_share, undo_share, i,
            result, lock))
        for i, t in enumerate(tokens)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result, time.perf_counter() - start


def check_exactly_once(store, sent: list[str]) -> dict[str, int]:
    """Audit rows per change id: each id sent must be there once (one sample per change)."""
    rows = store._query("SELECT decision_id, COUNT(*) AS n FROM audit GROUP BY decision_id")
    counts = {r["decision_id"]: int(r["n"]) for r in rows}
    return {
        "sent": len(sent), "recorded": sum(counts.values()),
        "missing": sum(1 for d in sent if d not in counts),
        "duplicated": sum(1 for n in counts.values() if n != 1),
        "unexpected": len(set(counts) - set(sent)),
    }


def recount(store) -> dict:
    """The progress counters recounted from the decisions table, not from the app's tallies."""
    rows = store._query(
        "SELECT s.quality, COALESCE(d.decision, 'none') AS decision, COUNT(*) AS n FROM samples s "
        "LEFT JOIN decisions d ON d.sample_id = s.sample_id GROUP BY s.quality, COALESCE(d.decision, 'none')")
    out = {"quality": dict.fromkeys(("accepted", "review", "rejected"), 0),
           "decided": {"accept": 0, "reject": 0}, "to_review": 0}
    for r in rows:
        out["quality"][r["quality"]] += r["n"]
        if r["decision"] != "none":
            out["decided"][r["decision"]] += r["n"]
        elif r["quality"] == "review":
            out["to_review"] += r["n"]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dataset: Path, db: str, port: int, timeout: float = 3600) -> subprocess.Popen:
    """``cropland curate serve`` in its own process; returns once it answers."""
    cmd = [sys.executable, "-m", "cropland.cli", "curate", "serve", str(dataset),
           "--port", str(port), "--db", db]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not answer within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks (USER_HZ)


def fake_dataset(root: Path) -> Path:
    """40 samples in the documented format (the test suite's generator)."""
    sys.path.insert(0, str(ROOT))
    from cropland.core.naming import SampleName
    from tests.curate.curate_fakes import Spec, make_dataset

    specs = [Spec(SampleName(p, 2019, m, "AB", "BARLEY")) for p in range(1, 9) for m in range(6, 11)]
    return make_dataset(root, specs)


def scored_store(dataset: Path, tmp: Path, db: str | None, workers: int) -> tuple[str, float, int]:
    """The store to run on, holding the dataset's quality scores; the seconds and samples that
    bringing the scores up to date took."""
    from cropland.curate.catalog import Catalog
    from cropland.curate.config import curate_config_for
    from cropland.curate.rules import ensure_quality
    from cropland.curate.store import DEFAULT_DB, Store

    start = time.perf_counter()
    source = Store(dataset / DEFAULT_DB)
    scored = ensure_quality(Catalog(dataset), source, curate_config_for(dataset), workers)
    seconds = time.perf_counter() - start
    if db:
        copy_scores(source, Store(db))
        return db, seconds, scored
    source.close()
    with sqlite3.connect(dataset / DEFAULT_DB) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(dataset / DEFAULT_DB, tmp / "load.sqlite")
    return str(tmp / "load.sqlite"), seconds, scored


def copy_scores(source, target) -> None:
    """Copy the quality scores of one store into another, a batch at a time."""
    last = ""
    while True:
        rows = source._query("SELECT * FROM quality WHERE sample_id > ? ORDER BY sample_id "
                             "LIMIT 5000", (last,))
        if not rows:
            return
        target.save_quality(
            (SimpleNamespace(sample_id=r["sample_id"], status=r["status"],
                             reasons=json.loads(r["reasons"]), metrics=json.loads(r["metrics"])),
             r["fingerprint"]) for r in rows)
        last = rows[-1]["sample_id"]


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"{len(ms):,} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {ms.max():.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, help="a built dataset (default: 40 fake samples)")
    parser.add_argument("--db", help="an empty PostgreSQL store to use instead of a SQLite copy "
                        "(the scores are copied into it)")
    parser.add_argument("--reviewers", type=int, default=8)
    parser.add_argument("--decisions", type=int, default=500, help="per reviewer")
    parser.add_argument("--retry-share", type=float, default=0.05)
    parser.add_argument("--undo-share", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=2, help="processes scoring the samples")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    from cropland.curate.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        dataset = (args.dataset or fake_dataset(Path(tmp) / "dataset")).resolve()
        db, scoring, scored = scored_store(dataset, Path(tmp), args.db, args.workers)
        store = Store(db)
        tokens = [store.add_reviewer(f"reviewer{i}") for i in range(args.reviewers)]
        port, start = free_port(), time.perf_counter()
        server = start_server(dataset, db, port)
        startup, cpu_start = time.perf_counter() - start, cpu_seconds(server.pid)
        try:
            facets = httpx.get(f"http://127.0.0.1:{port}/api/facets", timeout=60,
                               headers={"Authorization": f"Bearer {tokens[0]}"}).json()
            labels = facets["label"] if args.dataset else [None]
            result, wall = run_load(f"http://127.0.0.1:{port}", tokens, labels, args.decisions,
                                    args.retry_share, args.undo_share)
            server_cpu, server_rss = cpu_seconds(server.pid) - cpu_start, rss_peak(server.pid)
            shown = httpx.get(f"http://127.0.0.1:{port}/api/progress", timeout=60,
                              headers={"Authorization": f"Bearer {tokens[0]}"}).json()
        finally:
            server.terminate()
            server.wait(30)
        check = check_exactly_once(store, result.change_ids)
        counted = recount(store)
        samples = shown["total"]

    counters_ok = {k: shown[k] for k in counted} == counted
    ok = (not result.errors and counters_ok and check["missing"] == check["duplicated"]
          == check["unexpected"] == 0 and check["recorded"] == len(result.change_ids))
    requests = sum(len(v) for v in result.latencies.values())
    decision_p95 = np.percentile(np.array(result.latencies["decision"]) * 1000, 95)
    summary = (
        f"{args.reviewers} reviewers x {args.decisions} decisions on {samples:,} samples: "
        f"{result.decisions:,} decisions and {result.undos} undos ({result.retries} re-sent with "
        f"the same id), {requests:,} requests in {wall:.0f} s ({requests / wall:.0f}/s); "
        f"decision p95 {decision_p95:.1f} ms; recorded {check['recorded']:,}, missing "
        f"{check['missing']}, applied twice {check['duplicated']}, errors {len(result.errors)}; "
        f"counters equal a recount: {'yes' if counters_ok else 'NO'}"
    )
    print(summary)
    for e in result.errors[:5]:
        print("error:", e)
    if not args.no_write:
        kinds = [("decision", "accept / reject (POST, answer with the sample and counters)"),
                 ("detail", "open a sample (detail and the point's months)"),
                 ("page", "a page of 200 samples of a class still to decide"),
                 ("undo", "undo"), ("start", "sign-in: reviewer, filters, counters")]
        table = [f"| {text} | {percentiles(result.latencies[k])} |"
                 for k, text in kinds if result.latencies[k]]
        every = [s for v in result.latencies.values() for s in v]
        command = ("python benchmarks/curate_load.py" + (" --dataset DATASET" if args.dataset else "")
                   + (" --db POSTGRES_URL" if args.db else ""))
        store = "PostgreSQL" if args.db else "SQLite"
        where = (f"DATASET ({samples:,} samples, a synthetic release)" if args.dataset
                 else f"{samples} fake samples")
        text = "\n".join([
            f"## Review app under load: {samples:,} samples" + (f" ({store})" if args.db else ""),
            "",
            f"- {provenance(command)} Store: {store}.",
            f"- Setup: `cropland curate serve` (uvicorn, one process) on loopback, on {where}; "
            f"each reviewer is a thread (in one client process on the same machine) with its own "
            f"keep-alive connection and token, working through its class as the page does; "
            f"{args.retry_share:.0%} of the changes are sent twice with the same id, "
            f"{args.undo_share:.0%} of the decisions are followed by an undo.",
            f"- Result: {summary}.",
            f"- Server: start {startup:.0f} s (quality scores were in the store; bringing them "
            f"up to date, {scored:,} samples scored, took {scoring:.0f} s before); "
            f"CPU {server_cpu / max(result.decisions, 1) * 1000:.1f} ms per decision "
            f"(its detail, decision, undos and pages included); peak memory "
            f"{server_rss / 2**30:.2f} GiB.",
            f"- Exactly once: {'yes' if ok else 'NO'} (audit rows per change id, counted in the "
            "store after the run; the counters shown equal a recount from the decisions).",
            "",
            "| request | count | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|",
            *table,
            f"| every request | {percentiles(every)} |",
        ])
        write_section(f"curate_load_{samples}" + ("_postgresql" if args.db else ""), text)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
