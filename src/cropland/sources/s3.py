"""Assets on S3 (``s3://`` hrefs): read through GDAL's ``/vsis3/`` with the usual AWS credentials.

Earth Search's Level-1C JPEG 2000 files are in a requester-pays bucket (``sentinel-s2-l1c``,
the reads are billed to the reader's AWS account) and Copernicus Data Space Ecosystem's
products are on its own S3 endpoint (``eodata``, with S3 keys made in its dashboard). GDAL
reads them with the credentials it finds the usual AWS way: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``) in the environment, or a profile
(``AWS_PROFILE``, else ``default``) of ``~/.aws/credentials`` or ``~/.aws/config``
(``AWS_SHARED_CREDENTIALS_FILE`` and ``AWS_CONFIG_FILE`` move them), or a web-identity or
container role. Requester-pays buckets need ``AWS_REQUEST_PAYER=requester``, set here when
the catalogue preset or ``source.options.requester_pays`` says so.

Without credentials, :func:`require_credentials` fails before any request, in one line that
says what to set (:class:`~cropland.errors.CredentialsError` stops the build: every job would
fail alike). A refusal by the server (403: wrong keys, requester pays not agreed) is not
retried and stops the build the same way.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cropland.errors import CredentialsError
from cropland.sources.http import S3_REFUSAL


@dataclass(frozen=True)
class S3Settings:
    """Where ``s3://`` hrefs are read from, and whether the reader pays for the requests."""

    endpoint: str | None = None  # S3-compatible endpoint URL; None: AWS (or AWS_S3_ENDPOINT)
    region: str | None = None
    requester_pays: bool = False

    def gdal_env(self) -> dict[str, str]:
        """GDAL configuration options of these settings (credentials are GDAL's to find)."""
        env: dict[str, str] = {}
        if self.endpoint:
            url = urlsplit(self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}")
            env.update(AWS_S3_ENDPOINT=url.netloc, AWS_HTTPS="NO" if url.scheme == "http" else "YES",
                       AWS_VIRTUAL_HOSTING="FALSE")
        if self.region:
            env["AWS_REGION"] = self.region
        if self.requester_pays:
            env["AWS_REQUEST_PAYER"] = "requester"
        return env


def is_s3(href: str) -> bool:
    """Whether ``href`` is an ``s3://`` address."""
    return href.startswith("s3://")


def require_credentials(href: str, requester_pays: bool) -> None:
    """Raise :class:`CredentialsError` (one line) unless GDAL can sign requests for ``href``."""
    if _truthy(os.environ.get("AWS_NO_SIGN_REQUEST")):
        if requester_pays:
            raise CredentialsError(
                f"{_bucket(href)} is a requester-pays bucket: its requests must be signed, but "
                "AWS_NO_SIGN_REQUEST is set; unset it and give AWS credentials "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
        return
    if found := credentials_source():
        if found.startswith("missing profile"):
            raise CredentialsError(f"{_bucket(href)} needs AWS credentials: {found}")
        return
    billed = " (a requester-pays bucket: reads are billed to that account)" if requester_pays else ""
    raise CredentialsError(
        f"{_bucket(href)} needs AWS credentials and none were found{billed}: set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile of "
        "~/.aws/credentials")


def credentials_source() -> str | None:
    """Where GDAL will find AWS credentials (a short description), or None."""
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return "environment"
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return "web identity"
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") or env.get(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        return "container role"
    named = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE")
    profile = named or "default"
    aws = Path.home() / ".aws"
    credentials = _sections(env.get("AWS_SHARED_CREDENTIALS_FILE") or aws / "credentials")
    config = _sections(env.get("AWS_CONFIG_FILE") or aws / "config")
    section = {**config.get(profile if profile == "default" else f"profile {profile}", {}),
               **credentials.get(profile, {})}
    if section.get("aws_access_key_id") or any(k in section for k in (
            "role_arn", "credential_process", "sso_session", "sso_start_url")):
        return f"profile {profile}"
    if named:
        return (f"missing profile: AWS_PROFILE={named} names no profile with credentials in "
                "~/.aws/credentials or ~/.aws/config")
    return None


def refused(error: BaseException) -> bool:
    """Whether a read error is S3 refusing the request (credentials, requester pays)."""
    return bool(S3_REFUSAL.search(str(error))) or "HTTP response code: 403" in str(error)


def _sections(path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return {}
    return {name: dict(parser[name]) for name in parser.sections()}


def _bucket(href: str) -> str:
    return "s3://" + href[5:].split("/", 1)[0]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("YES", "TRUE", "ON", "1")
