"""Work spread over processes without holding the whole work list: a bounded stream of chunks.

``ProcessPoolExecutor.map`` submits every item at once, so its memory grows with the
dataset; :func:`imap_bounded` keeps only a few chunks in flight and yields results in order.
Every pool is made by :func:`process_pool`, whose workers end when their parent does, even
when it is killed with ``kill -9``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The cores this process may use, at most 8."""
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (no fork of a process with threads) that stop
    when this process ends, however it ends: a worker checks every 0.2 s that its parent is
    still there, and exits otherwise."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_follow_parent, initargs=(os.getpid(),))


def _follow_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:  # an orphan is adopted by another process
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def imap_bounded(
    fn: Callable[[T], R], items: Iterable[T], workers: int, in_flight: int | None = None
) -> Iterator[R]:
    """``fn`` over ``items``, results in order; at most ``in_flight`` items submitted at once.

    With ``workers`` <= 1 everything runs in this process. Otherwise the processes are
    spawned (no fork of a process with threads), so ``fn`` must be a module-level function
    and a script calling this needs the ``if __name__ == "__main__":`` guard. Give each item
    enough work (a chunk of samples) to outweigh its trip to a worker.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    pool = process_pool(workers)
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= (in_flight or 2 * workers):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
