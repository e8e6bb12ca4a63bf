"""Upload a release folder to the Hugging Face Hub (``huggingface_hub``; token from ``HF_TOKEN``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cropland.data.shards import verify_checksums
from cropland.errors import DatasetError

log = logging.getLogger(__name__)


def push(release: str | Path, repo: str, private: bool = False, token: str | None = None) -> str:
    """Create the dataset repository ``repo`` if needed and upload the release in one commit.

    The release is checked against its checksums first. Returns the commit's URL.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    release = Path(release)
    verify_checksums(release)
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise DatasetError("no Hugging Face token: set HF_TOKEN (a token with write access)")
    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo, repo_type="dataset", folder_path=release,
            commit_message=f"Publish {release.name} with cropland", ignore_patterns=[".*", "**/.*"],
        )
    except HfHubHTTPError as e:
        raise DatasetError(f"upload to the Hugging Face Hub failed: {e}") from None
    log.info("pushed %s to %s", release, commit.commit_url)
    return commit.commit_url
