"""Typed dependencies: routes ask for what they need, tests swap any of it with app.dependency_overrides."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.core.catalog import Catalog
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.core.user_store import GuardedStore
from services.serve.event_log import EventLog
from services.serve.history import RegistryHistory
from services.serve.loader import ModelLoader
from services.serve.metrics import ServeMetrics
from services.serve.rating_service import RatingService
from services.serve.recommend_service import RecommendService
from services.serve.reports import ReportReader
from services.serve.state import NOT_LOADED, LoadedModels, ModelState
from services.serve.translate import OverviewTranslator

# Dependencies are async on purpose: they only read app.state, and a sync one would cost a threadpool hop.


async def get_app_settings(request: Request) -> Settings:
    """The settings this app was created with."""
    return request.app.state.settings


async def get_models(request: Request) -> ModelState:
    """The holder of the models being served."""
    return request.app.state.models


async def get_metrics(request: Request) -> ServeMetrics:
    """This app's Prometheus collectors."""
    return request.app.state.metrics


async def get_translator(request: Request) -> OverviewTranslator:
    """The overview translator (started by the lifespan)."""
    return request.app.state.translator


async def get_loader(request: Request) -> ModelLoader:
    """The model loader (built by the lifespan)."""
    return request.app.state.loader


async def get_history(request: Request) -> RegistryHistory:
    """The registry history reader (built by the lifespan)."""
    return request.app.state.history


async def get_event_log(request: Request) -> EventLog:
    """The event spool and its flusher (opened by the lifespan)."""
    return request.app.state.events


async def get_reports(request: Request) -> ReportReader:
    """The reader of the DAG's daily reports (built by the lifespan)."""
    return request.app.state.reports


async def get_registry(request: Request) -> Registry:
    """The model registry the loader reads (built by the lifespan)."""
    return request.app.state.loader.registry


async def get_users(request: Request) -> GuardedStore:
    """The user store, guarded: its errors degrade answers, never fail them (opened by the lifespan)."""
    return request.app.state.users


async def get_s3(request: Request) -> ObjectStore:
    """The S3 store the app reads and writes (erasure markers)."""
    return request.app.state.s3


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ModelsDep = Annotated[ModelState, Depends(get_models)]
MetricsDep = Annotated[ServeMetrics, Depends(get_metrics)]
TranslatorDep = Annotated[OverviewTranslator, Depends(get_translator)]
LoaderDep = Annotated[ModelLoader, Depends(get_loader)]
HistoryDep = Annotated[RegistryHistory, Depends(get_history)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]
ReportsDep = Annotated[ReportReader, Depends(get_reports)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
UsersDep = Annotated[GuardedStore, Depends(get_users)]
S3Dep = Annotated[ObjectStore, Depends(get_s3)]


async def get_loaded(models: ModelsDep) -> LoadedModels:
    """The current model snapshot, taken once per request; 503 saying what to run when there is none."""
    current = models.current
    if current is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=models.detail or NOT_LOADED)
    return current


LoadedDep = Annotated[LoadedModels, Depends(get_loaded)]


async def get_rating_service(request: Request) -> RatingService:
    """A rating service on the current rating model; 503 when none is loaded.

    One flat dependency (not a chain of small ones): /predict is the hot path, and each dependency FastAPI
    resolves costs microseconds. The service is built once per loaded version, not per request.
    """
    state = request.app.state
    current = state.models.current
    bundle = current.rating if current is not None else None
    if bundle is None:
        detail = (state.models.detail or NOT_LOADED) if current is None else NOT_LOADED
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=detail)
    service = getattr(state, "rating_service", None)
    if service is None or service.bundle is not bundle or service.shadow is not current.rating_shadow:
        settings = state.settings
        service = RatingService(
            bundle, state.translator, state.metrics, shadow=current.rating_shadow,
            log_rate=settings.prediction_log_rate, log_text=settings.prediction_log_text,
        )  # fmt: skip
        state.rating_service = service  # a reload swapped the bundle: the next request builds a new one
    return service


async def get_recommend_service(request: Request) -> RecommendService:
    """A recommendation service on the current models (one flat dependency: /recommend is a hot path)."""
    state = request.app.state
    current = state.models.current
    if current is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=state.models.detail or NOT_LOADED)
    return RecommendService(current, state.settings.poster_base_url, state.metrics)


async def get_catalog(loaded: LoadedDep) -> Catalog:
    """The catalog of the current models."""
    return loaded.catalog


RatingServiceDep = Annotated[RatingService, Depends(get_rating_service)]
RecommendServiceDep = Annotated[RecommendService, Depends(get_recommend_service)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]

_bearer = HTTPBearer(auto_error=False, description="ADMIN_TOKEN")


async def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let through only 'Authorization: Bearer <ADMIN_TOKEN>'; admin is off when no token is configured."""
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        # 403, not 503: a switched-off endpoint is no outage, and monitoring must not read it as one.
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="admin endpoints are disabled: set ADMIN_TOKEN in the server's environment",
        )
    expected = settings.admin_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Depends(require_admin)
