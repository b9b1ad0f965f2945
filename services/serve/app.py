"""The FastAPI app factory: `uvicorn services.serve.app:create_app --factory`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Match, Route

from services.core.registry import Registry
from services.core.sentiment import sentiment
from services.core.settings import Settings, get_settings
from services.core.storage import ObjectStore
from services.core.user_store import GuardedStore
from services.core.user_store_open import open_user_store
from services.serve import gauges, lifecycle, limits
from services.serve.cache import ModelCache
from services.serve.event_log import EventLog
from services.serve.history import RegistryHistory
from services.serve.loader import ModelLoader, RecommenderLoader
from services.serve.metrics import MetricsMiddleware, ServeMetrics
from services.serve.reports import ReportReader
from services.serve.routes import (
    admin,
    experiments,
    feedback,
    history,
    monitoring,
    movies,
    online,
    ops,
    predict,
    recommend,
    users,
)
from services.serve.spool import Spool
from services.serve.state import ModelState
from services.serve.translate import GoogleBackend, OverviewTranslator, Translator

log = logging.getLogger(__name__)

# Startup talks to S3 with fewer, shorter attempts than batch jobs do: an unreachable S3 should send the
# server to its cache within seconds, not after a minute of retries.
STARTUP_MAX_ATTEMPTS = 2
STARTUP_CONNECT_TIMEOUT_S = 2.0


def create_app(
    settings: Settings | None = None,
    *,
    translator: Translator | None = None,
    store: ObjectStore | None = None,
    recommender_loader: RecommenderLoader | None = None,
) -> FastAPI:
    """Build the app; nothing touches the network until the lifespan starts."""
    settings = settings or get_settings()
    _configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.translator = OverviewTranslator(
            translator or GoogleBackend(settings.translate_base_url), settings.translate_timeout_s
        )
        s3 = store or ObjectStore.from_settings(_serving_s3_settings(settings))
        app.state.events = _event_log(settings, s3, app.state.metrics)
        # Before anything else: what an earlier run acknowledged but did not upload goes to S3 first.
        await anyio.to_thread.run_sync(app.state.events.open)
        app.state.events.start()
        app.state.loader = ModelLoader(Registry(s3), ModelCache(settings.model_cache_dir), recommender_loader)
        app.state.history = RegistryHistory(app.state.loader.registry)
        app.state.reports = ReportReader(s3)
        app.state.s3 = s3  # erasure markers (DELETE /users/{id})
        # Opening a store is a file or a lazy connection pool: cheap, and a Redis that is down fails per
        # operation later (GuardedStore), never the start.
        app.state.users = GuardedStore(
            await anyio.to_thread.run_sync(open_user_store, settings),
            on_error=lambda op: app.state.metrics.user_store_errors.labels(op).inc(),
        )
        try:
            # Blocking S3 and disk I/O: in a worker thread, so the loop stays free.
            await anyio.to_thread.run_sync(
                lifecycle.initial_load, app.state.models, app.state.loader, app.state.metrics
            )
            await anyio.to_thread.run_sync(
                sentiment, "Warm up the sentiment lexicon before the first request."
            )
            lifecycle.settle_heap()  # what is alive now lives as long as the models: out of the collector's sight
            async with anyio.create_task_group() as background:
                background.start_soon(gauges.keep_fresh, app.state.metrics, app.state.reports)
                yield
                background.cancel_scope.cancel()
        finally:
            app.state.translator.close()
            await anyio.to_thread.run_sync(app.state.users.store.close)
            await anyio.to_thread.run_sync(app.state.events.close)

    app = FastAPI(
        title="Movie Intelligence API",
        version="1.0.0",
        description="Rating predictions, recommendations and catalog search from the S3 model registry.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.models = ModelState()
    app.state.metrics = ServeMetrics()
    limits.install(app)  # inside the metrics middleware, so that its 413s are counted too
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(405, _method_not_allowed)
    app.add_exception_handler(Exception, _unhandled_error)
    for module in (
        predict,
        recommend,
        feedback,
        movies,
        ops,
        history,
        online,
        experiments,
        monitoring,
        admin,
        users,
    ):
        app.include_router(module.router)
    return app


def _event_log(settings: Settings, store: ObjectStore, metrics: ServeMetrics) -> EventLog:
    spool = Spool(settings.spool_dir, replica_id=settings.replica_id, synchronous=settings.spool_synchronous)
    return EventLog(
        spool, store, metrics,
        flush_interval_s=settings.spool_flush_interval_s, flush_rows=settings.spool_flush_rows,
        max_pending=settings.spool_max_pending, max_outage_s=settings.spool_max_outage_s,
        dedup_days=settings.spool_dedup_days,
    )  # fmt: skip


def _serving_s3_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "s3_max_attempts": min(settings.s3_max_attempts, STARTUP_MAX_ATTEMPTS),
            "s3_connect_timeout_s": min(settings.s3_connect_timeout_s, STARTUP_CONNECT_TIMEOUT_S),
        }
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's shape (detail: [{loc, msg, type}]) without echoing the input back (it may be 20,000 chars).
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse(status_code=422, content=jsonable_encoder({"detail": errors}))


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's Allow names the methods of the first route on the path only (POST for /predict, which
    # serves GET too). The union over every route on the path is what the OpenAPI document says of it, and
    # so what OPTIONS or any other method the path does not serve should be told.
    methods = {
        method
        for route in request.app.router.routes
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE
        for method in route.methods or ()
    }
    headers = {"Allow": ", ".join(sorted(methods))}
    return JSONResponse(status_code=405, content={"detail": "Method Not Allowed"}, headers=headers)


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug must still answer JSON, and be logged with its traceback (never the request headers).
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content={"detail": "internal server error (logged)"})


def _configure_logging() -> None:
    # uvicorn configures only its own loggers; give ours a handler when nobody else has.
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
