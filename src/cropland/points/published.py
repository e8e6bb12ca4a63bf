"""The published point lists, fetched from the dataset's original public repository.

The files of ``bioinfoUQAM/Canadian-cropland-dataset`` are pinned by commit and SHA-256
(:data:`POINT_LISTS`) and downloaded once into a cache folder with pooch, which checks each
file's hash. The base URL can be changed (``--base-url``, or the ``CROPLAND_POINTS_BASE_URL``
environment variable) to a mirror holding the same paths.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cropland.errors import PointsError

log = logging.getLogger(__name__)

REPOSITORY = "bioinfoUQAM/Canadian-cropland-dataset"
COMMIT = "49825df4d560c25bebde47e9a9107a1a4bd821de"  # HEAD of 2022-07-28
BASE_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}"
BASE_URL_ENV = "CROPLAND_POINTS_BASE_URL"

#: Published point lists: name -> (path in the repository, SHA-256). The repository holds one
#: (the 2019 list; no other year's list was ever committed).
POINT_LISTS: dict[str, tuple[str, str]] = {
    "2019": ("data_collection/points_ALL_categories_2019.csv",
             "30d696053e9b0d4dee19884aacf08176fef18ec92f4f097abe5de99dd75caa70"),
}


def default_cache() -> Path:
    """``~/.cache/cropland/points`` (the platform's user cache folder)."""
    import pooch

    return Path(pooch.os_cache("cropland")) / "points"


def fetch_point_list(name: str, cache: str | Path | None = None,
                     base_url: str | None = None) -> Path:
    """The local copy of a published point list, downloaded and checked on first use.

    Args:
        name: a key of :data:`POINT_LISTS` (e.g. ``"2019"``).
        cache: the cache folder (default :func:`default_cache`).
        base_url: where the repository's files are (default ``$CROPLAND_POINTS_BASE_URL``,
            else the pinned raw GitHub URL).
    """
    import pooch
    import requests

    if name not in POINT_LISTS:
        raise PointsError(f"no published point list {name!r}; known: {', '.join(POINT_LISTS)}")
    path, sha256 = POINT_LISTS[name]
    base = (base_url or os.environ.get(BASE_URL_ENV) or BASE_URL).rstrip("/")
    url = f"{base}/{path}"
    folder = Path(cache) if cache else default_cache()
    try:
        return Path(pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=Path(path).name,
                                   path=folder, progressbar=False))
    except requests.ConnectionError:
        raise PointsError(f"cannot reach {url} (offline?); connect to the internet, or download "
                          "the file yourself and import its path") from None
    except requests.HTTPError as e:
        raise PointsError(f"cannot download {url}: {e}") from None
    except ValueError as e:  # pooch: the file's hash is not the pinned one
        raise PointsError(f"{url} is not the published file ({e}); the copy was not kept") from None
