"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb.api.admission import WriteAdmission
from kb.api.guard import ErrorBoundary, ErrorResponse, request_id_of
from kb.api.idempotency import IdempotencyMiddleware
from kb.api.metrics import Metrics, RequestTimer
from kb.api.routes import (
    articles,
    audit,
    auth,
    health,
    ingest,
    lifecycle,
    reviews,
    search,
    secadmin,
    synonyms,
    tickets,
    users,
)
from kb.api.routes import metrics as metrics_route
from kb.api.security import SecurityHeaders
from kb.config import Settings
from kb.errors import KBError
from kb.identity.hardening import check_production
from kb.runtime import freeze_after_warmup
from kb.service import KnowledgeBase

logger = logging.getLogger(__name__)

#: Threads for the synchronous route handlers and dependencies (anyio's default is 40). A write waiting for the
#: index writer's lock holds its thread; with 40 such writes the searches behind them would wait for a thread,
#: not for the index. Waiting threads cost no CPU.
THREAD_TOKENS = 256


def create_app(settings: Settings, *, kb: KnowledgeBase | None = None) -> FastAPI:
    """Build the app. Nothing heavy happens until startup, when the knowledge base is opened (model loaded,
    index opened, pending changes applied), the background index applier starts and, with ``settings.gc_freeze``,
    the objects alive then are frozen out of the cycle collector's passes (:func:`kb.runtime.freeze_after_warmup`).

    Args:
        settings: configuration.
        kb: an already built knowledge base to serve (tests); it is opened at startup and closed at shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREAD_TOKENS
        service = kb or KnowledgeBase(settings)
        service.open()
        service.start_background_applier()
        app.state.kb = service
        metrics.watch(service)
        freeze_after_warmup(settings.gc_freeze)  # warm: the long-lived objects leave the collector's passes
        try:
            yield
        finally:
            metrics.unwatch(service)
            service.close()

    check_production(settings)
    production = settings.env == "production"
    app = FastAPI(
        docs_url=None if production else "/docs",  # production: no interactive docs and no schema
        redoc_url=None if production else "/redoc",
        openapi_url=None if production else "/openapi.json",
        title="kb: IT service desk knowledge base",
        version="0.1.0",
        lifespan=lifespan,
        description="Hybrid (BM25 + vector) Chinese search and article management for an IT service desk.",
    )
    app.include_router(search.router)
    app.include_router(lifecycle.router)  # before articles: /articles/review-queue is not an id
    app.include_router(articles.router)
    app.include_router(reviews.router)
    app.include_router(ingest.router)
    app.include_router(tickets.router)
    app.include_router(synonyms.router)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(audit.router)
    app.include_router(secadmin.router)
    app.include_router(metrics_route.router)

    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(RequestTimer, metrics=metrics)
    app.add_middleware(IdempotencyMiddleware)  # inside the boundary: its errors are JSON too
    app.add_middleware(
        WriteAdmission, limit=settings.write_concurrency, retry_after_s=settings.write_retry_after_seconds
    )
    app.add_middleware(ErrorBoundary)
    app.add_middleware(SecurityHeaders, production=production)  # outermost: every answer, errors included

    @app.exception_handler(KBError)
    async def kb_error(request: Request, exc: KBError) -> JSONResponse:
        body: dict[str, object] = {"error": exc.code, "detail": exc.message, **exc.extra()}
        if exc.status >= 500:
            body["request_id"] = request_id_of(request)
            logger.error("%s: %s (request id %s)", exc.code, exc.message, body["request_id"])
        return ErrorResponse(body, status_code=exc.status, headers=exc.headers() or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
        return ErrorResponse({"error": "invalid_input", "detail": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return ErrorResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code)

    return app
