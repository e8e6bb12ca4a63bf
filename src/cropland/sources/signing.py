"""Planetary Computer SAS tokens: asset URLs signed per collection, renewed before expiry."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from cropland.sources.http import retry_call
from cropland.sources.items import parse_time


class SasSigner:
    """Planetary Computer SAS tokens per collection, renewed before they expire."""

    def __init__(self, token_url: str, timeout: float, retries: int, margin_s: float = 300) -> None:
        self.token_url = token_url.rstrip("/")
        self.timeout, self.retries, self.margin = timeout, retries, timedelta(seconds=margin_s)
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def sign(self, href: str, collection: str) -> str:
        """``href`` with a valid token appended (fetched or renewed when needed)."""
        if not href.startswith("http"):
            return href
        return f"{href}{'&' if '?' in href else '?'}{self.token(collection)}"

    def token(self, collection: str) -> str:
        with self._lock:
            cached = self._tokens.get(collection)
            if cached and cached[1] - self.margin > datetime.now(UTC):
                return cached[0]
            token, expiry = retry_call(lambda: self._fetch(collection), "SAS token",
                                       attempts=self.retries)
            self._tokens[collection] = (token, expiry)
            return token

    def forget(self) -> None:
        """Drop every token (after a 403: the signature expired or was revoked)."""
        with self._lock:
            self._tokens.clear()

    def _fetch(self, collection: str) -> tuple[str, datetime]:
        import requests

        r = requests.get(f"{self.token_url}/{collection}", timeout=self.timeout)
        r.raise_for_status()
        body = r.json()
        return body["token"], parse_time(body["msft:expiry"])
