"""Shared by the benchmark scripts: the machine description, a process's peak memory and
docs/benchmarks.md sections."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

from cropland.io import write_text_atomic

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    """CPU model, usable cores, Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1).strip()
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"


def rss_peak(pid: int) -> int:
    """Peak resident memory (bytes) of a running process (VmHWM), 0 if it has ended."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def provenance(command: str) -> str:
    """One line: machine, date, command and the load the run shared the machine with."""
    return (f"Machine: {machine()}; date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"command: `{command}`; load average at the end {os.getloadavg()[0]:.1f}.")


def write_section(name: str, markdown: str, doc: Path = DOC) -> Path:
    """Replace (or append) the section ``name`` of docs/benchmarks.md, atomically."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{markdown.strip()}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    return write_text_atomic(doc, text)
