"""Network robustness shared by the remote sources: retries, GDAL settings, host limits.

Every remote call (a STAC API page, a COG window read, a SAS token) goes through
:func:`retry_call`: exponential backoff with full jitter on transient failures (HTTP 429
and 5xx, timeouts, connection resets, truncated bodies), bounded by an attempt count. A
call that still fails raises, and the runner records the job's tasks as failed.

:func:`host_slot` bounds the concurrent requests to one host within a process; a Dask
worker is one process, so a cluster makes at most ``workers x limit`` requests at once.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
T = TypeVar("T")

#: GDAL configuration for reading cloud-optimised GeoTIFFs over HTTP range requests.
COG_GDAL_ENV: dict[str, str | int | bool] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing per file
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.jp2,.JP2",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",  # one request for adjacent tiles
    # one request at a time per open file, so host_slot bounds the requests to a host
    # (the files of a scene are read in parallel instead)
    "GDAL_HTTP_MULTIRANGE": "SERIAL",
    "GDAL_HTTP_MULTIPLEX": "YES",  # HTTP/2 multiplexing where the server offers it
    "GDAL_HTTP_VERSION": "2",
    "VSI_CACHE": "TRUE",  # keep fetched bytes while a file is open
    "VSI_CACHE_SIZE": 64 * 2**20,
    "GDAL_INGESTED_BYTES_AT_OPEN": 32768,  # the header of a COG in the first request
    "CPL_VSIL_CURL_CHUNK_SIZE": 65536,
    "GDAL_HTTP_MAX_RETRY": 0,  # retries are ours (retry_call), so they are counted once
    # A failed or cut response must not stay in GDAL's process-wide /vsicurl cache: it
    # would fail every later open of the file, or worse, a cut header read from the cache
    # opens as a TIFF without its georeferencing (seen in the fault tests). Each open
    # keeps its own VSI_CACHE.
    "CPL_VSIL_CURL_NON_CACHED": "/vsicurl/:/vsis3/",
}

#: What S3 answers when it refuses a request (GDAL reports its message, not the status).
S3_REFUSAL = re.compile(r"Access ?Denied|InvalidAccessKeyId|SignatureDoesNotMatch|"
                        r"signature we calculated|InvalidToken|ExpiredToken", re.IGNORECASE)
#: HTTP status codes worth retrying.
RETRY_STATUS: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})


class TransientError(Exception):
    """A failure that a later attempt may not meet (raised by our own checks)."""


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` looks like a network hiccup rather than a permanent problem."""
    from rasterio.errors import RasterioError

    if isinstance(error, RasterioError):  # GDAL's HTTP, curl and truncated-tile errors
        if S3_REFUSAL.search(str(error)):  # S3's answer to wrong keys or an unpaid request
            return False
        status = re.search(r"HTTP response code: (\d+)", str(error))
        # 403 too: an expired URL signature, renewed before the next attempt
        return status is None or int(status.group(1)) in RETRY_STATUS | {403}
    if isinstance(error, TransientError | TimeoutError | ConnectionError | json.JSONDecodeError):
        return True  # JSON bodies cut short too
    # requests and pystac-client are optional (the stac extra): an error of theirs means
    # they are imported, so look them up without importing them
    if (requests := sys.modules.get("requests")) is not None:
        if isinstance(error, requests.HTTPError):
            return error.response is not None and error.response.status_code in RETRY_STATUS
        if isinstance(error, requests.RequestException):
            return True  # connection resets, read timeouts, chunked bodies cut short
    if (stac_errors := sys.modules.get("pystac_client.exceptions")) is not None:
        if isinstance(error, stac_errors.APIError):
            status = getattr(error, "status_code", None)
            return status is None or status in RETRY_STATUS
    return False


def backoff_delays(attempts: int, base: float, cap: float, rng: random.Random) -> Iterator[float]:
    """``attempts - 1`` sleeps: full jitter over an exponentially growing ceiling."""
    for k in range(attempts - 1):
        yield rng.uniform(0, min(cap, base * 2**k))


def retry_call(
    fn: Callable[[], T],
    what: str,
    attempts: int = 6,
    base: float = 0.25,
    cap: float = 10.0,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient errors with backoff and jitter."""
    rng = random.Random()
    delays = backoff_delays(attempts, base, cap, rng)
    while True:
        try:
            return fn()
        except Exception as e:
            delay = next(delays, None) if is_transient(e) else None
            if delay is None:
                raise
            log.debug("%s failed (%s: %s); retrying in %.2f s", what, type(e).__name__, e, delay)
            if on_retry is not None:
                on_retry(e)
            time.sleep(delay)


_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


@contextmanager
def host_slot(url: str, limit: int) -> Iterator[None]:
    """Hold one of ``limit`` concurrent-request slots of ``url``'s host in this process."""
    host = urlsplit(url).netloc or "local"
    with _slots_lock:
        slot = _slots.setdefault((host, limit), threading.BoundedSemaphore(limit))
    with slot:
        yield
