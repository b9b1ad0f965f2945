"""Operations: liveness, readiness, what is served, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.serve.deps import MetricsDep, ModelsDep, RatingServiceDep
from services.serve.schemas import NO_MODEL, HealthOut, ModelOut, ReadyOut, VersionInfo, VocabularyOut
from services.serve.state import NOT_LOADED, RatingBundle, RecommenderBundle

router = APIRouter(tags=["ops"])


@router.get("/health")
async def health() -> HealthOut:
    """Liveness: 200 while the process serves HTTP, models or not."""
    return HealthOut(status="ok")


@router.get("/ready", responses={503: {"model": ReadyOut, "description": "No rating model loaded"}})
async def ready(models: ModelsDep, response: Response) -> ReadyOut:
    """Readiness: 200 once a rating model is loaded (send traffic), 503 before (do not).

    Also says which versions are served, candidates of running experiments included.
    """
    current = models.current
    if current is None or not current.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return ReadyOut(ready=False, detail=models.detail or NOT_LOADED)
    return ReadyOut(
        ready=True,
        detail=models.detail,
        rating_version=current.version("rating"),
        recommender_version=current.version("recommender"),
        source=current.source,
        recommender_candidate_version=current.candidate_version("recommender"),
        rating_shadow_version=current.candidate_version("rating"),
        experiments={m: e.experiment_id for m, e in current.experiments.items()},
    )


@router.get("/model")
async def model(models: ModelsDep) -> ModelOut:
    """The versions served (production, and the candidates of running experiments), their metrics, W&B
    run, and whether they came from S3 or the cache."""
    current = models.current
    if current is None:
        return ModelOut(
            ready=False, source=None, loaded_at=None, load_seconds=None, detail=models.detail,
            rating=None, recommender=None, catalog_size=0,
        )  # fmt: skip
    return ModelOut(
        ready=current.ready,
        source=current.source,
        loaded_at=current.loaded_at,
        load_seconds=current.load_seconds,
        detail=models.detail,
        rating=_info(current.rating),
        recommender=_info(current.recommender),
        catalog_size=len(current.catalog),
        recommender_candidate=_info(current.recommender_candidate),
        rating_shadow=_info(current.rating_shadow),
        experiments=current.experiments,
    )


@router.get("/model/vocabulary", responses=NO_MODEL)
async def vocabulary(service: RatingServiceDep) -> VocabularyOut:
    """Genres, languages, countries and companies the served rating model knows (the UI's choices)."""
    enc = service.bundle.encoders
    return VocabularyOut(
        model_version=service.bundle.manifest.version,
        genres=enc.genres[1:],  # index 0 is the unknown bucket
        languages=enc.languages[1:],
        countries=enc.countries[1:],
        companies=enc.companies[1:],
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(collectors: MetricsDep) -> Response:
    """Prometheus text format: request counts, latency per route, model versions, rating distribution."""
    return Response(generate_latest(collectors.registry), media_type=CONTENT_TYPE_LATEST)


def _info(bundle: RatingBundle | RecommenderBundle | None) -> VersionInfo | None:
    if bundle is None:
        return None
    m = bundle.manifest
    return VersionInfo(
        version=m.version,
        algorithm=m.algorithm,
        created_at=m.created_at,
        metrics=m.metrics,
        wandb_run=m.wandb_run,
        git_commit=m.git_commit,
        n_features=len(m.features),
        features=list(m.features),
        source=bundle.source,
    )
