"""Load test of the review app: concurrent reviewers posting decisions to a real server.

Starts ``cropland curate serve`` (uvicorn) on loopback in its own process, gives each
reviewer a token, and lets every reviewer send its decisions from its own thread over a
keep-alive connection. A share of the requests is sent twice with the same decision id,
as a client does after a lost answer. Afterwards the audit log must hold every decision
exactly once. Writes its section of ``docs/benchmarks.md``.

    python benchmarks/curate_load.py                       # 8 reviewers x 500 decisions
    python benchmarks/curate_load.py --dataset demo-out    # on a built dataset
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from _doc import provenance, write_section  # noqa: E402

SECTION = "## Curation app under load"


@dataclass
class Result:
    """Latencies (seconds) of every request, and the decision ids sent."""

    latencies: list[float] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)


def reviewer_run(
    base_url: str, token: str, sample_ids: list[str], n: int, retry_share: float, seed: int,
    result: Result, lock: threading.Lock,
) -> None:
    """One reviewer: ``n`` decisions on random samples; some re-sent with the same id."""
    rng = random.Random(seed)
    mine = Result()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as client:
        for _ in range(n):
            body = {"decision_id": uuid.uuid4().hex, "sample_ids": [rng.choice(sample_ids)],
                    "decision": rng.choice(["accept", "reject"]), "reason": "load test"}
            sends = 2 if rng.random() < retry_share else 1
            for attempt in range(sends):
                start = time.perf_counter()
                r = client.post("/api/decisions", json=body)
                mine.latencies.append(time.perf_counter() - start)
                if r.status_code != 200 or r.json()["applied"] != (attempt == 0):
                    mine.errors.append(f"{r.status_code} {r.text[:200]}")
            mine.retries += sends - 1
            mine.decision_ids.append(body["decision_id"])
    with lock:
        result.latencies += mine.latencies
        result.decision_ids += mine.decision_ids
        result.retries += mine.retries
        result.errors += mine.errors


def run_load(
    base_url: str, tokens: list[str], sample_ids: list[str], per_reviewer: int,
    retry_share: float = 0.05,
) -> tuple[Result, float]:
    """Run every reviewer at once; return the merged result and the wall time."""
    result, lock = Result(), threading.Lock()
    threads = [
        threading.Thread(target=reviewer_run, args=(base_url, t, sample_ids, per_reviewer,
                                                    retry_share, i, result, lock))
        for i, t in enumerate(tokens)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result, time.perf_counter() - start


def check_exactly_once(db: Path, sent: list[str]) -> dict[str, int]:
    """Count audit rows per decision id: each sent id must be there once, nothing else."""
    import sqlite3

    rows = sqlite3.connect(db).execute(
        "SELECT decision_id, COUNT(*) FROM audit GROUP BY decision_id").fetchall()
    counts = dict(rows)
    return {
        "sent": len(sent), "recorded": sum(counts.values()),
        "missing": sum(1 for d in sent if d not in counts),
        "duplicated": sum(1 for n in counts.values() if n != 1),
        "unexpected": len(set(counts) - set(sent)),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dataset: Path, db: Path, port: int) -> subprocess.Popen:
    """``cropland curate serve`` in its own process; returns once it answers."""
    cmd = [sys.executable, "-m", "cropland.cli", "curate", "serve", str(dataset),
           "--port", str(port), "--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not answer within 120 s")


def fake_dataset(root: Path) -> Path:
    """40 samples in the documented format (the test suite's generator)."""
    sys.path.insert(0, str(ROOT))
    from tests.curate.curate_fakes import Spec, make_dataset

    from cropland.core.naming import SampleName

    specs = [Spec(SampleName(p, 2019, m, "AB", "BARLEY")) for p in range(1, 9) for m in range(6, 11)]
    return make_dataset(root, specs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, help="a built dataset (default: 40 fake samples)")
    parser.add_argument("--reviewers", type=int, default=8)
    parser.add_argument("--decisions", type=int, default=500, help="per reviewer")
    parser.add_argument("--retry-share", type=float, default=0.05)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    from cropland.curate.catalog import Catalog
    from cropland.curate.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or fake_dataset(Path(tmp) / "dataset")
        db = Path(tmp) / "load.sqlite"
        store = Store(db)
        tokens = [store.add_reviewer(f"reviewer{i}") for i in range(args.reviewers)]
        sample_ids = sorted(Catalog(dataset).samples)
        port = free_port()
        server = start_server(dataset, db, port)
        try:
            result, wall = run_load(f"http://127.0.0.1:{port}", tokens, sample_ids,
                                    args.decisions, args.retry_share)
        finally:
            server.terminate()
            server.wait(10)
        check = check_exactly_once(db, result.decision_ids)

    ms = np.array(result.latencies) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    ok = not result.errors and check["missing"] == check["duplicated"] == check["unexpected"] == 0
    ok = ok and check["recorded"] == args.reviewers * args.decisions
    summary = (
        f"{args.reviewers} reviewers x {args.decisions} decisions = {check['sent']} decisions "
        f"({result.retries} re-sent with the same id) in {wall:.1f} s, "
        f"{len(ms) / wall:.0f} requests/s; latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {p99:.1f} ms, max {ms.max():.1f} ms; recorded {check['recorded']}, missing "
        f"{check['missing']}, applied twice {check['duplicated']}; errors {len(result.errors)}"
    )
    print(summary)
    for e in result.errors[:5]:
        print("error:", e)
    if not args.no_write:
        command = "python benchmarks/curate_load.py" + (f" --dataset {args.dataset}" if args.dataset else "")
        write_section(
            "curate_load",
            f"{SECTION}\n\n"
            f"- {provenance(command)} SQLite store.\n"
            f"- Setup: `cropland curate serve` (uvicorn, one process) on loopback, on "
            f"{len(sample_ids)} samples; each reviewer is a thread (in one client process on the "
            f"same machine) with its own keep-alive HTTP connection and token; "
            f"{args.retry_share:.0%} of the decisions are sent twice with the same decision id.\n"
            f"- Result: {summary}.\n"
            f"- Exactly once: {'yes' if ok else 'NO'} (audit rows per decision id, counted in the "
            f"SQLite store after the run).\n"
            f"- Stated latency: the app answers a decision within **{max(50, int(np.ceil(p95 / 50) * 50))} ms at "
            f"the 95th percentile** under this load on this machine (measured p95 {p95:.1f} ms).\n"
        )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
