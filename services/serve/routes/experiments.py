"""Online experiments: which candidates run, how each day judged them, and how recent ones ended."""

from __future__ import annotations

from typing import Annotated

import anyio
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Query

from services.core.experiments import ExperimentEnd, read_candidates
from services.core.registry import MODEL_NAMES, Registry
from services.core.registry_pointer import now_iso
from services.serve.deps import ModelsDep, RegistryDep, ReportsDep
from services.serve.reports import ReportReader, ReportsUnavailable, unavailable
from services.serve.schemas import ErrorOut
from services.serve.schemas_experiments import ExperimentsOut, RunningExperimentOut

router = APIRouter(tags=["ops"])

REPORT_DAYS = 30  # daily reports read per model; a running experiment's are the newest ones


@router.get(
    "/model/experiments",
    responses={503: {"model": ErrorOut, "description": "The registry or the reports on S3 cannot be read"}},
)
async def model_experiments(
    registry: RegistryDep,
    reports: ReportsDep,
    models: ModelsDep,
    recent: Annotated[int, Query(ge=1, le=50, description="How many ended experiments")] = 10,
) -> ExperimentsOut:
    """The running experiments with their daily reports so far, and the recent ones' ends, newest first.

    A recommender canary's daily report (the DAG's judge_experiment task) gives each arm's users, hit rate
    and MRR, the candidate-minus-production difference with its interval, and the day's verdict.
    """
    try:
        # Blocking S3 reads in a worker thread, one at a time with the other report routes.
        out = await anyio.to_thread.run_sync(_read, registry, reports, recent, limiter=reports.limiter)
    except ReportsUnavailable as exc:
        raise unavailable(exc) from exc
    current = models.current
    served = {m: e.experiment_id for m, e in current.experiments.items()} if current else {}
    for item in out.running:
        item.served = served.get(item.experiment.model) == item.experiment.experiment_id
    return out


def _read(registry: Registry, reports: ReportReader, recent: int) -> ExperimentsOut:
    running: list[RunningExperimentOut] = []
    ended: list[ExperimentEnd] = []
    for model in MODEL_NAMES:
        try:
            doc = read_candidates(registry, model)
        except (BotoCoreError, ClientError, OSError, ValueError) as exc:
            raise ReportsUnavailable(
                f"the registry on S3 cannot be read right now ({type(exc).__name__}); try again shortly"
            ) from exc
        ended.extend(doc.ended)
        experiment = doc.running
        if experiment is None:
            continue
        window = max(REPORT_DAYS, experiment.rule.max_days + 2)
        days = [
            d for d in reports.recent("experiments", f"{model}.json", window)
            if d.get("experiment_id") == experiment.experiment_id
        ]  # fmt: skip
        running.append(RunningExperimentOut(experiment=experiment, days=days, served=False))
    ended.sort(key=lambda e: e.ended_at, reverse=True)
    return ExperimentsOut(running=running, recent=ended[:recent], updated_at=now_iso())
