# SPDX-License-Identifier: MIT
"""A small HTTP API over a Sutra store (FastAPI).

Run it with uvicorn; the store comes from the environment:

    SUTRA_DATA=/srv/sutra SUTRA_STORAGE_MODE=server \\
        uvicorn sutra.api.app:app --port 8000 [--workers 2]

SUTRA_DATA is the store (a directory or storage.dat; default ./sutra-data);
SUTRA_VECTOR_DIMENSION the dimension of a new store (embedded mode);
SUTRA_STORAGE_MODE, SUTRA_COORDINATOR_URL, SUTRA_EVENTS_URL and
SUTRA_TIMEOUT_MS are read by sutra.get_storage_backend(). Nothing is opened
before the first request, so forked workers each open their own.

Reads accept ?min_epoch=E: the request first waits (up to wait_timeout
seconds, default $SUTRA_API_WAIT_TIMEOUT or 5) until this process sees epoch E, the epoch a write
through any process returned: read-your-writes across processes.
"""

import os
from typing import List, Optional

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import sutra


class LearnIn(BaseModel):
    content: str = Field(..., min_length=1)
    id: Optional[str] = Field(None, description="hex id; default concept_id(content)")
    embedding: Optional[List[float]] = None
    strength: float = 1.0
    confidence: float = 1.0
    metadata: Optional[str] = None


class AssociationIn(BaseModel):
    source_id: str
    target_id: str
    assoc_type: int = Field(0, ge=0, le=255)
    confidence: float = 1.0
    weight: float = 1.0


class QueryIn(BaseModel):
    text: Optional[str] = None
    vector: Optional[List[float]] = None
    k: int = Field(10, ge=1, le=sutra.MAX_K)
    ef_search: int = Field(50, ge=0, le=100000)
    mode: str = Field("all", description="text terms: all (AND) or any (OR)")


_STATUS = [
    (sutra.NotFound, 404),
    (sutra.DimensionError, 400),
    (sutra.TooBig, 413),
    (sutra.InvalidArgument, 400),
    (sutra.Unavailable, 503),
    (sutra.Timeout, 504),
    (sutra.Unsupported, 501),
    (sutra.StoreLocked, 503),
]


# The widest values the C calls take: epochs are u64, limits size_t (a
# larger number in a query string is a 422, not an overflow in C).
_U64_MAX = 2**64 - 1
_LIMIT_MAX = 2**63 - 1


def _status(exc):
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 500


def _concept_json(c):
    e = c["embedding"]
    return {
        "id": c["id"],
        "content": c["content"],
        "embedding": None if e is None else e.tolist(),
        "strength": c["strength"],
        "confidence": c["confidence"],
        "created_us": c["created_us"],
        "updated_us": c["updated_us"],
        "metadata": None if c["metadata"] is None else c["metadata"].decode("utf-8", "replace"),
    }


def create_app(store=None, path=None, wait_timeout=None):
    """The FastAPI app over store (default: get_storage_backend(path or
    $SUTRA_DATA), opened lazily). wait_timeout: the longest a read waits
    for ?min_epoch (seconds; default $SUTRA_API_WAIT_TIMEOUT or 5)."""
    if wait_timeout is None:
        wait_timeout = float(os.environ.get("SUTRA_API_WAIT_TIMEOUT") or 5)
    if store is None:
        kw = {}
        if os.environ.get("SUTRA_VECTOR_DIMENSION"):
            kw["vector_dimension"] = int(os.environ["SUTRA_VECTOR_DIMENSION"])
        store = sutra.get_storage_backend(path or os.environ.get("SUTRA_DATA", "sutra-data"),
                                          **kw)
    app = FastAPI(title="Sutra storage", version=sutra.__version__)
    app.state.store = store

    @app.exception_handler(sutra.Error)
    async def sutra_error(request: Request, exc: sutra.Error):
        return JSONResponse(status_code=_status(exc),
                            content={"error": getattr(exc, "name", type(exc).__name__),
                                     "kind": type(exc).__name__, "detail": str(exc)})

    @app.exception_handler(TypeError)
    async def type_error(request: Request, exc: TypeError):
        return JSONResponse(status_code=400, content={"error": "TypeError", "detail": str(exc)})

    # JSON may carry a lone surrogate ("\ud800"), which no UTF-8 holds.
    @app.exception_handler(UnicodeEncodeError)
    async def unicode_error(request: Request, exc: UnicodeEncodeError):
        return JSONResponse(status_code=400, content={
            "error": "InvalidText",
            "detail": f"text is not valid Unicode: {exc.reason} at position {exc.start}"})

    def wait(min_epoch):
        if min_epoch and not store.wait_for_epoch(min_epoch, wait_timeout):
            raise HTTPException(504, f"epoch {min_epoch} not visible after {wait_timeout} s")

    @app.post("/learn")
    def learn(body: LearnIn):
        cid = sutra.normalize_id(body.id) if body.id else sutra.concept_id(body.content)
        epoch = store.learn_concept(cid, body.content, body.embedding, body.strength,
                                    body.confidence, body.metadata)
        return {"id": cid, "epoch": epoch}

    @app.post("/associations")
    def associations(body: AssociationIn):
        epoch = store.learn_association(body.source_id, body.target_id, body.assoc_type,
                                        body.confidence, body.weight)
        return {"epoch": epoch}

    @app.get("/concepts/{cid}")
    def get_concept(cid: str, min_epoch: int = Query(0, ge=0, le=_U64_MAX)):
        wait(min_epoch)
        c = store.query_concept(cid)
        if c is None:
            raise HTTPException(404, f"no concept {sutra.normalize_id(cid)}")
        return _concept_json(c)

    @app.delete("/concepts/{cid}")
    def delete_concept(cid: str):
        return {"epoch": store.delete_concept(cid)}

    @app.get("/neighbors/{cid}")
    def neighbors(cid: str, assoc_type: Optional[int] = Query(None, ge=0, le=255),
                  direction: str = "both",
                  limit: Optional[int] = Query(None, ge=0, le=_LIMIT_MAX),
                  min_epoch: int = Query(0, ge=0, le=_U64_MAX)):
        wait(min_epoch)
        return {"id": sutra.normalize_id(cid),
                "neighbors": store.neighbors(cid, assoc_type, direction, limit)}

    @app.get("/path")
    def path(start: str, end: str, max_depth: int = Query(6, ge=1, le=sutra.MAX_PATH_DEPTH),
             k: int = Query(1, ge=1, le=sutra.MAX_PATHS), assoc_type: Optional[int] = Query(
                 None, ge=0, le=255), direction: str = "both",
             min_epoch: int = Query(0, ge=0, le=_U64_MAX)):
        wait(min_epoch)
        if k == 1:
            p = store.find_path(start, end, max_depth, assoc_type, direction)
            return {"path": p, "paths": [p] if p else []}
        ps = store.find_paths(start, end, max_depth, assoc_type, direction, k)
        return {"path": ps[0] if ps else None, "paths": ps}

    @app.post("/query")
    def query(body: QueryIn, min_epoch: int = Query(0, ge=0, le=_U64_MAX)):
        if body.text is None and body.vector is None:
            raise HTTPException(400, "give text, vector or both")
        if body.mode not in ("all", "any"):
            raise HTTPException(400, "mode must be 'all' or 'any'")
        wait(min_epoch)
        if body.vector is not None:
            hits = store.vector_search(body.vector, body.k, body.ef_search, text=body.text,
                                       text_mode=body.mode)
            return {"results": [{"id": i, "similarity": s} for i, s in hits]}
        hits = store.text_search(body.text, body.mode, body.k)
        return {"results": [{"id": i, "matched": m, "strength": st} for i, m, st in hits]}

    @app.get("/stats")
    def stats():
        st = store.stats()
        info = store.info()
        st.update({"mode": info["mode"], "role": info["role"], "pid": info["pid"]})
        return st

    @app.get("/epoch")
    def epoch(wait_for: int = Query(0, ge=0, le=_U64_MAX)):
        """The newest epoch this process sees (after waiting for wait_for)."""
        wait(wait_for)
        return {"epoch": store.stats()["epoch"]}

    return app


def __getattr__(name):
    # "uvicorn sutra.api.app:app" creates the app on first access, not at
    # import (which would create ./sutra-data for any importer).
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
