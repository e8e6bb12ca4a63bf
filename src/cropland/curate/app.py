"""The review web app: a JSON API and one plain HTML/JS page (``static/``).

Every ``/api`` request carries ``Authorization: Bearer TOKEN`` (``cropland curate token add
NAME``), checked before any byte of its body is read; bodies are capped at ``MAX_BODY``.
Sample ids are checked against a pattern, then looked up in the dataset's :class:`Catalog`;
files are only ever reached through that index. Every failure is a 4xx, or a 503 when the
server cannot store a decision (a full disk), with a message that says what to do.
"""

import io
import json
import logging
import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cropland.config import CurateConfig
from cropland.core.naming import IMAGE_TYPES, POINT_ID_PATTERN
from cropland.curate.catalog import Catalog
from cropland.curate.config import curate_config_for
from cropland.curate.quality import pixel_masks
from cropland.curate.rules import ensure_quality, final_status
from cropland.curate.store import (
    DEFAULT_DB,
    Change,
    ConflictingRetry,
    NothingToUndo,
    Store,
    StoreError,
)
from cropland.errors import DatasetError
from cropland.export.geotiff import SAMPLE_BANDS, read_sample
from cropland.export.png import render_type

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SAMPLE_ID = rf"^POINT_{POINT_ID_PATTERN}_\d{{6}}_[A-Z]{{2}}_[A-Z][A-Z0-9_]{{0,40}}$"
SampleId = Annotated[str, Field(pattern=SAMPLE_ID, max_length=80)]
DecisionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
ImageKind = Literal["RGB", "NDVI", "NDVI45", "GNDVI", "OSAVI", "PSRI", "NDWI", "MASK"]
QualityStatus = Literal["accepted", "review", "rejected"]
DecisionFilter = Literal["none", "accept", "reject"]
#: Colours of the quality mask: no data, cloud, shadow (valid pixels are grey by VALID).
MASK_COLOURS = {"nodata": (220, 30, 30), "cloud": (40, 220, 230), "shadow": (40, 60, 220)}
MASK_FULL_OBS = 8
#: The largest request body (a bulk decision on 1,000 samples is about 100 KB).
MAX_BODY = 1 << 20
TOO_LARGE = f"request body over {MAX_BODY} bytes; send at most 1,000 samples per decision"
#: Largest audit sequence number (SQL BIGINT).
MAX_SEQ = 2**63 - 1


class DecisionIn(BaseModel):
    """Accept or reject samples; ``decision_id`` makes a retried request harmless."""

    model_config = ConfigDict(extra="forbid")
    decision_id: DecisionId
    sample_ids: list[SampleId] = Field(min_length=1, max_length=1000)
    decision: Literal["accept", "reject"]
    reason: str = Field("", max_length=500)


class UndoIn(BaseModel):
    """Undo the caller's latest change; ``decision_id`` identifies this undo."""

    model_config = ConfigDict(extra="forbid")
    decision_id: DecisionId


class Review:
    """The review state of a dataset, kept in the store: its sample index, scores, decisions.

    Starting scores new or changed samples and indexes the dataset's samples in the store;
    afterwards every request reads only the rows it returns.
    """

    def __init__(self, catalog: Catalog, store: Store, cfg: CurateConfig):
        self.store, self.cfg = store, cfg
        self.root, self.render = catalog.root, catalog.render
        self.dataset_name = catalog.root.name
        ensure_quality(catalog, store, cfg)
        store.index_samples(catalog.index_rows(), catalog.version)
        self.facets = store.facets()
        self._array = lru_cache(maxsize=64)(self._read)
        self.image = lru_cache(maxsize=4096)(self._image)

    def path(self, sid: str) -> Path | None:
        """The GeoTIFF of a sample, from the index; None for an id the dataset does not have."""
        relative = self.store.sample_path(sid)
        return None if relative is None else self.root / relative

    @staticmethod
    def item(row: dict[str, Any]) -> dict[str, Any]:
        """The JSON summary of a sample from its review row (see :meth:`Store.items`)."""
        decision = {"decision": row["decision"]} if row["decision"] else None
        return {
            **row, "reasons": json.loads(row["reasons"]) if row["reasons"] else [],
            "status": final_status({"status": row["quality"]}, decision),
        }

    def items(self, sids: list[str]) -> list[dict[str, Any]]:
        """The JSON summaries of these samples, in review order."""
        return [self.item(r) for r in self.store.items(sids)]

    def _read(self, sid: str) -> np.ndarray:
        path = self.path(sid)
        if path is None:
            raise KeyError(sid)
        return read_sample(path)[0]

    def _image(self, sid: str, kind: str) -> bytes:
        data = self._array(sid)
        if kind == "MASK":
            pixels = self.mask_image(data)
        else:
            pixels = render_type(data, kind, self.render)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()

    def mask_image(self, data: np.ndarray) -> np.ndarray:
        """RGB picture of the quality mask: coloured flags over grey by VALID count.

        The grey scale is fixed (1 observation dark grey, ``MASK_FULL_OBS`` or more light
        grey) so that months can be compared side by side.
        """
        valid = np.nan_to_num(data[SAMPLE_BANDS.index("VALID")], nan=0.0)
        grey = (70 + 160 * np.clip(valid, 0, MASK_FULL_OBS) / MASK_FULL_OBS).astype(np.uint8)
        out = np.repeat(grey[..., None], 3, axis=-1)
        for name, mask in pixel_masks(data, self.cfg).items():
            out[mask] = MASK_COLOURS[name]
        return out


def create_app(
    dataset: str | Path, db: str | Path | None = None, cfg: CurateConfig | None = None
) -> FastAPI:
    """The review app of a dataset; decisions go to ``db`` (default ``DATASET/curate.sqlite``).

    Thresholds: ``cfg``, else the ``curate:`` section of the dataset's ``config.yaml``.
    """
    catalog = Catalog(dataset)
    store = Store(db or catalog.root / DEFAULT_DB)
    review = Review(catalog, store, cfg or curate_config_for(catalog.root))
    app = FastAPI(title="cropland curate", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.review = review
    _add_error_handlers(app)
    app.add_middleware(_Gate, store=store)
    _add_security_headers(app)
    bearer = HTTPBearer(auto_error=False)

    def reviewer(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> str:
        """The caller, whose token _Gate checked (``creds`` documents the scheme in OpenAPI)."""
        return request.state.reviewer

    Reviewer = Annotated[str, Depends(reviewer)]
    PathId = Annotated[str, PathParam(pattern=SAMPLE_ID, max_length=80)]

    def known(sid: str) -> str:
        if review.path(sid) is None:
            raise HTTPException(404, f"no sample {sid} in this dataset")
        return sid

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/me")
    def me(name: Reviewer) -> dict:
        """The reviewer the token belongs to, and the dataset."""
        return {"reviewer": name, "dataset": review.dataset_name, "image_types": IMAGE_TYPES}

    @app.get("/api/facets")
    def facets(name: Reviewer) -> dict:
        """Values of the filters: classes, years, months, provinces."""
        return review.facets

    @app.get("/api/progress")
    def progress(name: Reviewer) -> dict:
        """Progress counters."""
        return store.progress()

    @app.get("/api/samples")
    def samples(
        name: Reviewer,
        label: Annotated[str | None, Query(pattern=r"^[A-Z][A-Z0-9_]{0,40}$")] = None,
        year: Annotated[int | None, Query(ge=2015, le=2100)] = None,
        month: Annotated[int | None, Query(ge=1, le=12)] = None,
        province: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
        quality: QualityStatus | None = None,
        decision: DecisionFilter | None = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict:
        """Samples matching the filters, by point, year and month; one page of them."""
        filters = {"label": label, "year": year, "month": month, "province": province,
                   "quality": quality, "decision": decision}
        total, rows = store.page(filters, offset, limit)
        return {"total": total, "offset": offset, "items": [review.item(r) for r in rows]}

    @app.get("/api/samples/{sid}")
    def sample(name: Reviewer, sid: PathId) -> dict:
        """One sample: summary, quality metrics, and the same point's other samples."""
        known(sid)
        item = review.items([sid])[0]
        item["metrics"] = store.metrics(sid)
        item["same_point"] = [review.item(r) for r in store.same_point(sid)]
        return item

    @app.get("/api/samples/{sid}/image/{kind}", response_class=Response)
    def image(name: Reviewer, sid: PathId, kind: ImageKind) -> Response:
        """A PNG: RGB, an index, or MASK (red no data, cyan cloud, blue shadow)."""
        known(sid)
        return Response(review.image(sid, kind), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/decisions")
    def decide(name: Reviewer, body: DecisionIn) -> dict:
        """Accept or reject samples. A repeated ``decision_id`` is answered, not re-applied."""
        indexed = store.indexed(body.sample_ids)
        unknown = [sid for sid in body.sample_ids if sid not in indexed]
        if unknown:
            raise HTTPException(404, f"no sample {', '.join(unknown[:5])} in this dataset")
        change = store.decide(body.decision_id, name, body.sample_ids, body.decision, body.reason)
        return answer(change)

    @app.post("/api/undo")
    def undo(name: Reviewer, body: UndoIn) -> dict:
        """Undo the caller's latest decision (a bulk decision is undone as a whole)."""
        return answer(store.undo(body.decision_id, name))

    def answer(change: Change) -> dict:
        """A change, the changed samples' summaries and the progress counters after it, so
        the page updates from the answer instead of reading lists again."""
        sids = list(dict.fromkeys(e["sample_id"] for e in change.entries))
        return {"decision_id": change.decision_id, "applied": change.applied,
                "entries": change.entries, "items": review.items(sids),
                "progress": store.progress()}

    @app.get("/api/audit")
    def audit(
        name: Reviewer,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    ) -> dict:
        """The audit log, newest first."""
        return {"entries": store.audit(limit, before)}

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        return JSONResponse(
            {"detail": "invalid request: " + "; ".join(problems),
             "errors": [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]},
            status_code=422,
        )

    @app.exception_handler(StoreError)
    async def refused(request: Request, exc: StoreError) -> JSONResponse:
        status = 409 if isinstance(exc, (ConflictingRetry, NothingToUndo)) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(DatasetError)
    async def damaged(request: Request, exc: DatasetError) -> JSONResponse:
        return JSONResponse({"detail": f"the dataset changed since the app started: {exc}"},
                            status_code=409)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": f"the server cannot read or write its files ({exc}); "
                             "nothing was changed: try again once its disk has space "
                             "(tell whoever runs the app)"}, status_code=503,
                            headers={"Retry-After": "60"})

    for error in _storage_errors():
        app.add_exception_handler(error, unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))


class _Gate:
    """ASGI middleware: an ``/api`` request needs a valid token before any byte of its body is
    read, and its body may not exceed ``MAX_BODY`` (refused with 413 as soon as it does)."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app, self.store = app, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/") \
                or scope["path"] == "/api/openapi.json":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope["headers"]}
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return await _reply(send, 401, "missing token: send 'Authorization: Bearer TOKEN' "
                                "(create one with `cropland curate token add NAME`)",
                                [(b"www-authenticate", b"Bearer")])
        name = await run_in_threadpool(self.store.reviewer_for_token, token.strip())
        if name is None:
            return await _reply(send, 403, "invalid or revoked token; ask for a new one "
                                "(`cropland curate token add NAME`)")
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            return await _reply(send, 413, TOO_LARGE)
        body = b""
        while True:  # at most MAX_BODY bytes, even when no length was declared (chunked)
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                return await _reply(send, 413, TOO_LARGE)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        scope.setdefault("state", {})["reviewer"] = name
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _reply(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    content = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": content})


def _storage_errors() -> tuple[type[Exception], ...]:
    """What a full or read-only disk raises: OS errors, and each database driver's own."""
    errors: list[type[Exception]] = [OSError, sqlite3.OperationalError]
    try:
        import psycopg

        errors.append(psycopg.OperationalError)
    except ImportError:
        pass
    return tuple(errors)


def _add_security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def serve(
    dataset: str | Path, host: str = "127.0.0.1", port: int = 8000, db: str | None = None,
    cfg: CurateConfig | None = None,
) -> None:
    """Run the review app with uvicorn until interrupted."""
    import uvicorn

    app = create_app(dataset, db, cfg)
    log.info("review app of %s on http://%s:%d/", dataset, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
