"""Fixtures of the source tests: the loopback STAC API and COG servers (see s2_loopback)."""

from tests.sources.s2_loopback import loopback  # noqa: F401  (session fixture)
