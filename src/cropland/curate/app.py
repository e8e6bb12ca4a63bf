"""The review web app: a JSON API and one plain HTML/JS page (``static/``).

Every ``/api`` request carries ``Authorization: Bearer TOKEN`` (``cropland curate token add
NAME``). Sample ids are checked against a pattern, then looked up in the dataset's
:class:`Catalog`; files are only ever reached through that index.
"""

import io
import logging
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
from starlette.exceptions import HTTPException as StarletteHTTPException

from cropland.config import CurateConfig
from cropland.core.naming import IMAGE_TYPES
from cropland.curate.catalog import Catalog
from cropland.curate.config import curate_config_for
from cropland.curate.quality import pixel_masks
from cropland.curate.rules import ensure_quality, final_status
from cropland.curate.store import DEFAULT_DB, ConflictingRetry, NothingToUndo, Store, StoreError
from cropland.export.geotiff import SAMPLE_BANDS, read_sample
from cropland.export.png import render_type

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SAMPLE_ID = r"^POINT_\d{1,9}_\d{6}_[A-Z]{2}_[A-Z][A-Z0-9_]{0,40}$"
SampleId = Annotated[str, Field(pattern=SAMPLE_ID, max_length=80)]
DecisionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
ImageKind = Literal["RGB", "NDVI", "NDVI45", "GNDVI", "OSAVI", "PSRI", "NDWI", "MASK"]
QualityStatus = Literal["accepted", "review", "rejected"]
DecisionFilter = Literal["none", "accept", "reject"]
#: Colours of the quality mask: no data, cloud, shadow (valid pixels are grey by VALID).
MASK_COLOURS = {"nodata": (220, 30, 30), "cloud": (40, 220, 230), "shadow": (40, 60, 220)}
MASK_FULL_OBS = 8


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
    """The review state of a dataset: catalog, quality scores and decisions."""

    def __init__(self, catalog: Catalog, store: Store, cfg: CurateConfig):
        self.catalog, self.store, self.cfg = catalog, store, cfg
        ensure_quality(catalog, store, cfg)
        self.quality = {sid: q for sid, q in store.quality().items() if sid in catalog}
        self.order = sorted(catalog.samples, key=lambda sid: catalog.get(sid).name)
        self._array = lru_cache(maxsize=64)(self._read)
        self.image = lru_cache(maxsize=4096)(self._image)

    def decisions(self) -> dict[str, dict]:
        """The current decisions on this dataset's samples."""
        return {sid: d for sid, d in self.store.decisions().items() if sid in self.catalog}

    def item(self, sid: str, decisions: dict[str, dict]) -> dict[str, Any]:
        """The JSON summary of one sample."""
        s, q, d = self.catalog.get(sid), self.quality[sid], decisions.get(sid)
        final = final_status(q, d)
        return {
            "id": sid, "point_id": s.name.point_id, "year": s.name.year, "month": s.name.month,
            "province": s.name.province, "label": s.name.label, "split": s.split,
            "quality": q["status"], "reasons": q["reasons"],
            "decision": d["decision"] if d else None, "reviewer": d["reviewer"] if d else None,
            "decision_reason": d["reason"] if d else None, "status": final,
        }

    def progress(self) -> dict[str, Any]:
        """Counts of automatic statuses, decisions and what is left to review."""
        decisions = self.decisions()
        auto = [q["status"] for q in self.quality.values()]
        pending = sum(1 for sid, q in self.quality.items() if q["status"] == "review" and sid not in decisions)
        final = [self.item(sid, decisions)["status"] for sid in self.catalog.samples]
        return {
            "total": len(self.catalog),
            "quality": {k: auto.count(k) for k in ("accepted", "review", "rejected")},
            "decided": {k: sum(d["decision"] == k for d in decisions.values()) for k in ("accept", "reject")},
            "to_review": pending,
            "final": {k: final.count(k) for k in ("accepted", "review", "rejected")},
            "reviewers": self.store.reviewer_counts(),
        }

    def _read(self, sid: str) -> np.ndarray:
        return read_sample(self.catalog.get(sid).path)[0]

    def _image(self, sid: str, kind: str) -> bytes:
        data = self._array(sid)
        if kind == "MASK":
            pixels = self.mask_image(data)
        else:
            pixels = render_type(data, kind, self.catalog.render)
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
    _add_security_headers(app)
    bearer = HTTPBearer(auto_error=False)

    def reviewer(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise HTTPException(401, "missing token: send 'Authorization: Bearer TOKEN' "
                                "(create one with `cropland curate token add NAME`)",
                                headers={"WWW-Authenticate": "Bearer"})
        name = store.reviewer_for_token(creds.credentials)
        if name is None:
            raise HTTPException(403, "invalid or revoked token; ask for a new one "
                                "(`cropland curate token add NAME`)")
        return name

    Reviewer = Annotated[str, Depends(reviewer)]
    PathId = Annotated[str, PathParam(pattern=SAMPLE_ID, max_length=80)]

    def known(sid: str) -> str:
        if sid not in catalog:
            raise HTTPException(404, f"no sample {sid} in this dataset")
        return sid

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/me")
    def me(name: Reviewer) -> dict:
        """The reviewer the token belongs to, and the dataset."""
        return {"reviewer": name, "dataset": catalog.root.name, "image_types": IMAGE_TYPES}

    @app.get("/api/facets")
    def facets(name: Reviewer) -> dict:
        """Values of the filters: classes, years, months, provinces."""
        return catalog.facets()

    @app.get("/api/progress")
    def progress(name: Reviewer) -> dict:
        """Progress counters."""
        return review.progress()

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
        decisions = review.decisions()
        wanted = {"label": label, "year": year, "month": month, "province": province}
        items = []
        for sid in review.order:
            s = catalog.get(sid)
            if any(v is not None and getattr(s.name, k) != v for k, v in wanted.items()):
                continue
            item = review.item(sid, decisions)
            if quality and item["quality"] != quality:
                continue
            if decision and (item["decision"] or "none") != decision:
                continue
            items.append(item)
        return {"total": len(items), "offset": offset, "items": items[offset:offset + limit]}

    @app.get("/api/samples/{sid}")
    def sample(name: Reviewer, sid: PathId) -> dict:
        """One sample: summary, quality metrics, and the same point's other samples."""
        known(sid)
        decisions = review.decisions()
        item = review.item(sid, decisions)
        item["metrics"] = review.quality[sid]["metrics"]
        item["same_point"] = [review.item(o, decisions) for o in catalog.same_point(sid)]
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
        unknown = [sid for sid in body.sample_ids if sid not in catalog]
        if unknown:
            raise HTTPException(404, f"no sample {', '.join(unknown[:5])} in this dataset")
        change = store.decide(body.decision_id, name, body.sample_ids, body.decision, body.reason)
        return {"decision_id": change.decision_id, "applied": change.applied, "entries": change.entries}

    @app.post("/api/undo")
    def undo(name: Reviewer, body: UndoIn) -> dict:
        """Undo the caller's latest decision (a bulk decision is undone as a whole)."""
        change = store.undo(body.decision_id, name)
        return {"decision_id": change.decision_id, "applied": change.applied, "entries": change.entries}

    @app.get("/api/audit")
    def audit(
        name: Reviewer,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1)] = None,
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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))


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
