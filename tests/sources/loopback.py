"""Loopback servers for tests and benchmarks of the remote sources (no internet needed).

* :class:`RangeServer`: static files over HTTP/1.1 with ``Range`` and ``HEAD`` support,
  counting requests and bytes, like the object stores that hold Sentinel-2 COGs.
* :class:`FaultProxy`: an HTTP proxy in front of another server that answers a share of
  requests with 500 or 429, delays them, or cuts their body short, from a seeded draw.
* :func:`start_stac_api`: a real STAC API server (``rustac serve``, in-memory backend)
  loaded with items, in a subprocess.
* :func:`write_scene_cogs`: COGs and a STAC item for one simulator scene window.

Run ``python -m tests.sources.loopback range DIR`` to serve a folder from a separate
process (the benchmark does, to measure the server's CPU); it prints the port it bound.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Counters:
    """Requests served and body bytes sent, thread-safe."""

    requests: int = 0
    bytes: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0  # most requests handled at once
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arrive(self) -> bool:
        """Count one more request waiting for its answer."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return True

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def add(self, nbytes: int, fault: str | None = None) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += nbytes
            if fault:
                self.faults[fault] = self.faults.get(fault, 0) + 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.counters = Counters()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        """Clients closing connections early (GDAL does) is normal: log, do not print."""
        log.debug("connection from %s ended early: %s", client_address, sys.exc_info()[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RangeServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = (self.server.root / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
        if self.server.root not in path.parents or not path.is_file():
            self._reply(404, b"not found", body)
            return
        size = path.stat().st_size
        first, last = _parse_range(self.headers.get("Range"), size)
        if first is None:
            self._reply(416, b"", body, {"Content-Range": f"bytes */{size}"})
            return
        with path.open("rb") as f:
            f.seek(first)
            data = f.read(last - first + 1) if body else b""
        rng = self.headers.get("Range", "")
        partial = rng.startswith("bytes=") and "," not in rng
        headers = {"Accept-Ranges": "bytes", "Content-Type": "image/tiff"}
        if partial:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        self._reply(206 if partial else 200, data, body, headers, length=last - first + 1)

    def _reply(self, status: int, data: bytes, body: bool, headers: dict | None = None,
               length: int | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(data)
        self.server.counters.add(len(data) if body else 0)


def _parse_range(header: str | None, size: int) -> tuple[int | None, int]:
    """(first, last) byte of a single ``bytes=`` range; the whole file for none or several."""
    if not header or "," in header or not header.startswith("bytes="):
        return 0, size - 1
    start, _, end = header[6:].partition("-")
    if not start:
        return max(0, size - int(end)), size - 1
    first, last = int(start), min(int(end) if end else size - 1, size - 1)
    return (first, last) if first < size else (None, 0)


class RangeServer(_Server):
    """Serve the files under ``root`` on 127.0.0.1 with range requests."""

    def __init__(self, root: str | Path, port: int = 0) -> None:
        self.root = Path(root).resolve()
        super().__init__(port, _RangeHandler)


FAULTS = ("500", "429", "delay", "truncate")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        self._waiting = self.server.counters.arrive()
        try:
            self._forward_one()
        finally:
            self._answered()

    def _answered(self) -> None:
        """The request stops counting as in flight once its answer starts (the client
        cannot send its next request on that connection before reading it)."""
        if self._waiting:
            self._waiting = False
            self.server.counters.leave()

    def _forward_one(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else None
        fault = self.server.draw()
        if fault in ("500", "429"):
            extra = {"Retry-After": "0"} if fault == "429" else {}
            self._send(int(fault), b'{"detail": "injected fault"}', extra)
            self.server.counters.add(0, fault)
            return
        if fault == "delay":
            time.sleep(self.server.rng_uniform(0.05, 0.4))
        status, headers, data = self._upstream(payload)
        if fault == "truncate" and len(data) > 1 and self.command != "HEAD":
            self._send(status, data[: len(data) // 2], headers, length=len(data))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(status, data, headers)
        self.server.counters.add(len(data), fault)

    def _upstream(self, payload: bytes | None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            conn.request(self.command, self.path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            keep = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_HEADERS}
            if self.command == "HEAD":  # no body: pass the upstream length on
                keep["Content-Length"] = resp.getheader("Content-Length", "0")
            return resp.status, keep, data
        finally:
            conn.close()

    def _send(self, status: int, data: bytes, headers: dict, length: int | None = None) -> None:
        self._answered()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
            self.wfile.flush()


class FaultProxy(_Server):
    """Forward to ``upstream`` (``http://host:port``), injecting faults in ``rate`` of requests."""

    def __init__(self, upstream: str, rate: float = 0.0, seed: int = 0, port: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.rate = rate
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        super().__init__(port, _ProxyHandler)

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        with self._rng_lock:
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(FAULTS)

    def rng_uniform(self, a: float, b: float) -> float:
        with self._rng_lock:
            return self._rng.uniform(a, b)


@dataclass
class StacApi:
    """A running ``rustac serve`` process."""

    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_stac_api(items: list[dict], folder: Path, port: int | None = None,
                   public_url: str | None = None) -> StacApi:
    """Serve ``items`` with a real STAC API (rustac, in-memory backend) on loopback.

    ``public_url`` is the address the API writes into its links (a proxy in front of it).
    """
    exe = shutil.which("rustac") or str(Path(sys.executable).parent / "rustac")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    port = port or free_port()
    bind = f"127.0.0.1:{port}"
    cmd = [exe, "serve", "--addr", public_url or f"http://{bind}", "--bind", bind,
           "--create-collections", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    api = StacApi(f"http://{bind}", proc)
    _wait_for(api.url + "/", proc)
    return api


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
        try:
            conn.request("GET", parts.path or "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)  # not up yet, or not ready to answer 200
    raise RuntimeError(f"{url} did not answer within {timeout} s")


# -- catalogues ------------------------------------------------------------------------
#: Earth Search asset keys of the bands (also what the test catalogues use).
EARTH_SEARCH_KEYS: dict[str, str] = {
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge1",
    "B6": "rededge2", "B7": "rededge3", "B8": "nir", "B8A": "nir08", "B9": "nir09",
    "B11": "swir16", "B12": "swir22", "SCL": "scl", "QA60": "qa60",
}


def write_cog(path: Path, array: np.ndarray, transform, crs: str, blocksize: int = 256) -> None:
    """Write one band as a tiled, deflate-compressed cloud-optimised GeoTIFF."""
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "COG", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype, "crs": crs, "transform": transform, "nodata": 0,
               "compress": "DEFLATE", "blocksize": blocksize, "overviews": "NONE"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def item_dict(scene_id: str, when: str, cloud: float, bbox: tuple, assets: dict[str, str],
              collection: str, properties: dict | None = None) -> dict:
    """A minimal valid STAC item with one asset per href in ``assets``."""
    w, s, e, n = bbox
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": scene_id, "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "bbox": [w, s, e, n],
        "properties": {"datetime": when, "eo:cloud_cover": cloud, **(properties or {})},
        "links": [],
        "assets": {k: {"href": h, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                       "roles": ["data"]} for k, h in assets.items()},
    }


def write_scene_cogs(source, scene, bounds: tuple[float, float, float, float], root: Path,
                     base_url: str, keys: dict[str, str] = EARTH_SEARCH_KEYS,
                     collection: str = "sentinel-2-l2a", properties: dict | None = None) -> dict:
    """Render a simulator scene window to COGs under ``root`` and return its STAC item.

    Asset hrefs are ``{base_url}/{scene.id}/{band}.tif`` (``base_url`` may be a file path).
    """
    from pyproj import Transformer

    utm = scene.properties["utm"]
    layers = source.render(scene, bounds)
    assets = {}
    for name, (array, transform) in layers.items():
        write_cog(root / scene.id / f"{name}.tif", array, transform, utm)
        assets[keys[name]] = f"{base_url}/{scene.id}/{name}.tif"
    bbox = Transformer.from_crs(utm, "EPSG:4326", always_xy=True).transform_bounds(
        *bounds, densify_pts=21)
    props = {"s2:processing_baseline": scene.properties["processing_baseline"],
             "proj:epsg": int(utm.split(":")[1]), **(properties or {})}
    return item_dict(scene.id, scene.datetime.strftime("%Y-%m-%dT%H:%M:%SZ"), scene.cloud_cover,
                     bbox, assets, collection, props)


def simulator_items(source, lonlat_box: tuple[float, float, float, float], start, end,
                    root: Path, base_url: str, **kwargs) -> list[dict]:
    """COGs and STAC items of every simulator scene over ``lonlat_box`` in ``[start, end)``.

    Each scene is rendered on the UTM window covering the box (rounded out to 60 m);
    ``kwargs`` go to :func:`write_scene_cogs`.
    """
    from pyproj import Transformer

    items = []
    for scene in source.search(lonlat_box, start, end, float("inf")):  # fully cloudy too
        utm = scene.properties["utm"]
        left, bottom, right, top = Transformer.from_crs(
            "EPSG:4326", utm, always_xy=True).transform_bounds(*lonlat_box, densify_pts=21)
        bounds = (np.floor(left / 60) * 60, np.floor(bottom / 60) * 60,
                  np.ceil(right / 60) * 60, np.ceil(top / 60) * 60)
        items.append(write_scene_cogs(source, scene, bounds, root, base_url, **kwargs))
    return items


def main(argv: list[str]) -> None:
    """``range DIR [PORT]``: serve DIR until killed, printing the port first."""
    if len(argv) < 2 or argv[0] != "range":
        raise SystemExit("usage: python -m tests.sources.loopback range DIR [PORT]")
    server = RangeServer(argv[1], int(argv[2]) if len(argv) > 2 else 0)
    print(server.server_address[1], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
