"""A real S3-compatible server on loopback: moto's server, with signatures checked.

moto (``moto[server]``) answers the S3 API as AWS does and, with authentication switched on,
checks every request's signature against the access keys of its IAM users. It keeps no
requester-pays setting (5.2.5 accepts ``PutBucketRequestPayment`` and forgets it), so a thin
WSGI layer in front of it answers what S3 answers for a requester-pays bucket: 403
``AccessDenied`` to a GET or HEAD of an object without ``x-amz-request-payer: requester``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                 b"<Message>Access Denied</Message></Error>")


@dataclass
class S3Loopback:
    """A running moto S3 server and the keys of a user allowed to read it."""

    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    requester_pays: set[str]
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, payer
    server: object = None

    def client(self):
        """A boto3 S3 client of the reader."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def upload(self, bucket: str, files: dict[str, Path]) -> dict[str, str]:
        """Put ``files`` (key -> local path) into ``bucket``; their ``s3://`` hrefs."""
        client = self.client()
        for key, path in files.items():
            client.upload_file(str(path), bucket, key,
                               ExtraArgs={"RequestPayer": "requester"})
        return {key: f"s3://{bucket}/{key}" for key in files}

    def stop(self) -> None:
        from moto import settings

        self.server.shutdown()
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")


class _RequesterPays:
    def __init__(self, app, loopback: S3Loopback) -> None:
        self.app, self.loopback = app, loopback

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        payer = environ.get("HTTP_X_AMZ_REQUEST_PAYER", "").lower() == "requester"
        self.loopback.requests.append((method, path, payer))
        bucket, _, key = path.lstrip("/").partition("/")
        if method in ("GET", "HEAD") and key and bucket in self.loopback.requester_pays \
                and not payer:
            start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                             ("Content-Length", str(len(ACCESS_DENIED)))])
            return [ACCESS_DENIED if method == "GET" else b""]
        return self.app(environ, start_response)


def start_s3(buckets: list[str], requester_pays: tuple[str, ...] = ()) -> S3Loopback:
    """moto's S3 on 127.0.0.1 with ``buckets``, a reader with full S3 access, and
    signatures checked from then on (``requester_pays`` buckets refuse requests without the
    header)."""
    import boto3
    import requests
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    loopback = S3Loopback("", "", "", set(requester_pays))
    app = _RequesterPays(DomainDispatcherApplication(create_backend_app), loopback)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    loopback.server = server
    loopback.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    # moto keeps its state per process: start from none (an earlier server's users, buckets)
    requests.post(f"{loopback.endpoint}/moto-api/reset", timeout=10)
    admin = {"endpoint_url": loopback.endpoint, "region_name": "us-east-1",
             "aws_access_key_id": "admin", "aws_secret_access_key": "admin"}
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    loopback.access_key, loopback.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
    s3 = boto3.client("s3", **admin)
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    requests.post(f"{loopback.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    return loopback
