"""A fake Hugging Face Hub on loopback: just the API calls ``HfApi.create_repo`` and
``HfApi.upload_folder`` make on the LFS path (``HF_HUB_DISABLE_XET=1``), as documented in
huggingface_hub (``hf_api.create_repo``, ``_commit_api._fetch_upload_modes`` / ``_send_commit``,
``lfs.post_lfs_batch_info`` / ``lfs_upload``, git-lfs batch API):

* ``POST /api/repos/create``                                   -> ``{"url": ...}``
* ``POST /api/validate-yaml``                                   -> the card's YAML header is valid
* ``POST /api/datasets/{repo}/preupload/{revision}``            -> upload mode per file
* ``POST /datasets/{repo}.git/info/lfs/objects/batch``          -> basic transfer, PUT href
* ``PUT  /lfs/{oid}``                                           -> the LFS object's bytes
* ``POST /api/datasets/{repo}/commit/{revision}`` (ndjson)      -> ``{"commitUrl", "commitOid"}``

Committed files are written under ``root/{repo}/``; every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import yaml

from tests.sources.loopback import _Server

LFS_THRESHOLD = 10 << 20  # the Hub stores files of 10 MB and more (and binaries) in LFS


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeHub

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _json(self, status: int, doc: dict) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self._body()
        self.server.requests.append(("POST", self.path, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._json(401, {"error": "Invalid credentials"})
        if self.path == "/api/repos/create":
            doc = json.loads(body)
            repo = f"{doc['organization']}/{doc['name']}"
            self.server.repos[repo] = doc
            return self._json(200, {"url": f"{self.server.url}/datasets/{repo}", "name": repo})
        if self.path == "/api/validate-yaml":  # the card's YAML header, checked before the commit
            doc = json.loads(body)
            header = doc["content"].split("---")[1] if doc["content"].startswith("---") else ""
            try:
                self.server.cards.append(yaml.safe_load(header))
            except yaml.YAMLError as e:
                return self._json(400, {"error": str(e)})
            return self._json(200, {"warnings": []})
        if m := re.fullmatch(r"/api/datasets/(.+)/preupload/main", self.path):
            files = json.loads(body)["files"]
            return self._json(200, {"files": [
                {"path": f["path"], "shouldIgnore": False,
                 "uploadMode": "lfs" if f["size"] >= LFS_THRESHOLD or f["path"].endswith(".parquet") else "regular"}
                for f in files]})
        if m := re.fullmatch(r"/datasets/(.+)\.git/info/lfs/objects/batch", self.path):
            objects = json.loads(body)["objects"]
            return self._json(200, {"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"], "authenticated": True,
                 "actions": {"upload": {"href": f"{self.server.url}/lfs/{o['oid']}"}}} for o in objects]})
        if m := re.fullmatch(r"/api/datasets/(.+)/commit/main", self.path):
            repo = m.group(1)
            for line in body.splitlines():
                entry = json.loads(line)
                if entry["key"] == "file":
                    self.server.store(repo, entry["value"]["path"], base64.b64decode(entry["value"]["content"]))
                elif entry["key"] == "lfsFile":
                    data = self.server.lfs.pop(entry["value"]["oid"])
                    assert len(data) == entry["value"]["size"]
                    self.server.store(repo, entry["value"]["path"], data)
            return self._json(200, {"commitUrl": f"{self.server.url}/datasets/{repo}/commit/{'1' * 40}",
                                    "commitOid": "1" * 40, "pullRequestUrl": None})
        self._json(404, {"error": f"not faked: {self.path}"})

    def do_PUT(self) -> None:
        body = self._body()
        self.server.requests.append(("PUT", self.path, None))
        oid = self.path.rsplit("/", 1)[-1]
        if hashlib.sha256(body).hexdigest() != oid:
            return self._json(400, {"error": "sha256 mismatch"})
        self.server.lfs[oid] = body
        self._json(200, {})


class FakeHub(_Server):
    """The fake Hub; ``root`` receives the committed files, ``requests`` what was asked."""

    def __init__(self, root: Path, token: str) -> None:
        self.root, self.token = root, token
        self.requests: list[tuple[str, str, str | None]] = []
        self.repos: dict[str, dict] = {}
        self.lfs: dict[str, bytes] = {}
        self.committed: list[str] = []
        self.cards: list[dict] = []
        super().__init__(0, _HubHandler)

    def store(self, repo: str, path: str, data: bytes) -> None:
        target = self.root / repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.committed.append(path)
