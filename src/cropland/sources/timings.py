"""Where a build's read time goes, per process: fetch, read, reproject, and retries."""

from __future__ import annotations

import threading


class Timings:
    """Seconds spent in this process: ``fetch`` (wall time of a scene's parallel reads),
    ``read`` (requests + decode, summed over threads), ``reproject``; ``retries`` counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, float] = {}

    def add(self, key: str, value: float) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + value

    def take(self) -> dict[str, float]:
        """The totals so far, reset to zero."""
        with self._lock:
            values, self.values = self.values, {}
        return values


TIMINGS = Timings()
