"""Candidates in the registry: a recommender canary that serves a share of users, a rating model in shadow.

Beside ``production.json`` each model has ``candidate.json``: the running experiment (or none) and how
the recent ones ended. It is changed only by conditional writes (registry_pointer.update_document), like
the production pointer, so two deciders never overwrite each other unseen.

    registry/<model>/candidate.json   {"running": Experiment | null, "ended": [ExperimentEnd, ...]}

An experiment is ``canary`` (the recommender: users are split between the arms by
`arm_of(experiment_id, user_id, share)`) or ``shadow`` (the rating model: the candidate scores every
request beside production, and its answers are logged, never returned).

Ending one is crash-safe by order. A promote moves the production pointer first (refused with
PointerMoved when production is no longer the version the experiment was run against), then clears
the candidate. A crash between the two leaves a candidate that *is* production: `effective_candidate`
treats it as no experiment, serving splits nobody, and the next decision (or `finish`) clears it. A
rollback only clears the candidate: production never moved.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.core.registry import MODEL_NAMES, ChecksumError, Registry
from services.core.registry_pointer import (
    PointerMoved,
    RegistryError,
    now_iso,
    read_document,
    update_document,
)
from services.core.settings import Settings

log = logging.getLogger(__name__)

Arm = Literal["production", "candidate"]
Mode = Literal["canary", "shadow"]
Outcome = Literal["promoted", "rolled_back", "inconclusive", "aborted"]
ENDED_LIMIT = 50
MODE_OF: dict[str, Mode] = {"recommender": "canary", "rating": "shadow"}


class ExperimentRule(BaseModel):
    """How a canary is decided (services/train/experiments/stats.py applies it); recorded at its start."""

    metric: str = "hit_rate"  # the per-user measure that decides
    guard_metric: str = "mrr"  # must not be significantly worse either
    delta: float = Field(default=0.01, ge=0.0)  # non-inferiority margin on the metric
    min_users: int = Field(default=200, ge=1)  # per arm, before anything is decided
    max_days: int = Field(default=7, ge=1)  # then rolled back as inconclusive
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)  # of the reported interval


class Experiment(BaseModel):
    """A running experiment: which candidate, against which production, for what share of users."""

    experiment_id: str
    model: str
    mode: Mode
    version: str  # the candidate
    production_version: str | None  # production when it started: the arm it is compared with
    share: float = Field(ge=0.0, le=1.0)  # of users who get the candidate (canary); 0 for shadow
    started_at: str
    started_by: str = ""  # "pipeline", "registry.sh", "simulate", ...
    reason: str = ""
    rule: ExperimentRule = Field(default_factory=ExperimentRule)


class ExperimentEnd(BaseModel):
    """How an experiment ended, and why."""

    experiment: Experiment
    outcome: Outcome
    reason: str
    ended_at: str
    figures: dict = Field(default_factory=dict)  # the deciding report's figures, when there was one


class CandidateDoc(BaseModel):
    """candidate.json: the running experiment of one model, and the recent ones' ends (newest last)."""

    model: str
    running: Experiment | None = None
    ended: list[ExperimentEnd] = Field(default_factory=list)
    revision: int = 0


def arm_of(experiment_id: str, user_id: str | None, share: float) -> Arm:
    """The arm of a user: stable across replicas, processes and restarts (a hash, no state).

    Hashing the experiment id with the user id gives each experiment its own split, so the users who
    saw the last candidate are not the same ones again. No user id: production.
    """
    if not user_id or share <= 0.0:
        return "production"
    digest = hashlib.blake2b(f"{experiment_id}\x1f{user_id}".encode(), digest_size=8).digest()
    return "candidate" if int.from_bytes(digest, "big") / 2**64 < share else "production"


def rule_from_settings(settings: Settings) -> ExperimentRule:
    """The decision rule the settings ask for (EXPERIMENT_DELTA, EXPERIMENT_MIN_USERS, EXPERIMENT_MAX_DAYS)."""
    return ExperimentRule(
        delta=settings.experiment_delta, min_users=settings.experiment_min_users,
        max_days=settings.experiment_max_days,
    )  # fmt: skip


def candidate_key(registry: Registry, model: str) -> str:
    """Where a model's candidate.json lives."""
    return f"{registry.prefix}/{model}/candidate.json"


def read_candidates(registry: Registry, model: str) -> CandidateDoc:
    """The candidate document of a model (empty when no experiment was ever started)."""
    _check(model)
    doc, _ = read_document(registry.store, candidate_key(registry, model), CandidateDoc)
    return doc or CandidateDoc(model=model)


def effective_candidate(doc: CandidateDoc, production: str | None) -> Experiment | None:
    """The experiment serving should run: none when the candidate already is production (a promote
    that crashed before it cleared the candidate), since both arms would be the same model."""
    running = doc.running
    if running is None or running.version == production:
        return None
    return running


def new_experiment_id(model: str, now: datetime | None = None) -> str:
    """A sortable, unique experiment id."""
    now = now or datetime.now(UTC)
    return f"{model}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def start(
    registry: Registry, model: str, version: str, *, share: float, rule: ExperimentRule | None = None,
    started_by: str = "", reason: str = "",
) -> Experiment:  # fmt: skip
    """Start an experiment of a verified version against today's production; refused when one runs."""
    _check(model)
    mode = MODE_OF[model]
    problems = registry.verify(model, version)
    if problems:
        raise ChecksumError(f"refusing to start an experiment of {model} {version}: " + "; ".join(problems))
    production = registry.production_version(model)
    if production is None:
        raise RegistryError(f"{model}: nothing in production to compare {version} with; promote it instead")
    if production == version:
        raise RegistryError(f"{model}: {version} already is production")
    experiment = Experiment(
        experiment_id=new_experiment_id(model), model=model, mode=mode, version=version,
        production_version=production, share=share if mode == "canary" else 0.0, started_at=now_iso(),
        started_by=started_by, reason=reason, rule=rule or ExperimentRule(),
    )  # fmt: skip

    def decide(doc: CandidateDoc | None) -> CandidateDoc:
        doc = doc or CandidateDoc(model=model)
        live = effective_candidate(doc, production)
        if live is not None:
            raise RegistryError(
                f"{model}: experiment {live.experiment_id} ({live.version}) is running; "
                f"promote or roll it back first (registry.sh promote|rollback {model})"
            )
        ended = doc.ended
        if doc.running is not None:  # a promote that crashed before clearing: record its end now
            ended = [*ended, _end(doc.running, "promoted", "candidate found in production (finished late)")]
        return doc.model_copy(update={"running": experiment, "ended": ended[-ENDED_LIMIT:],
                                      "revision": doc.revision + 1})  # fmt: skip

    update_document(registry.store, candidate_key(registry, model), CandidateDoc, decide)
    log.info("%s experiment %s started: %s against production %s, share %.2f (%s)",
             model, experiment.experiment_id, version, production, experiment.share, reason)  # fmt: skip
    return experiment


def end(
    registry: Registry, model: str, outcome: Outcome, reason: str, *, experiment_id: str | None = None,
    figures: dict | None = None,
) -> ExperimentEnd:  # fmt: skip
    """End the running experiment: on "promoted" production moves to the candidate first, then the
    candidate is cleared; any other outcome only clears it. `experiment_id` guards against ending a
    newer experiment than the one decided on (PointerMoved)."""
    _check(model)
    doc = read_candidates(registry, model)
    running = doc.running
    if running is None:
        raise RegistryError(f"{model}: no experiment is running")
    if experiment_id is not None and running.experiment_id != experiment_id:
        raise PointerMoved(
            f"{model}: experiment {experiment_id} is no longer running ({running.experiment_id} is)"
        )
    if outcome == "promoted":
        registry.promote(
            model, running.version, reason=f"experiment {running.experiment_id}: {reason}",
            expected_production=running.production_version,
        )  # fmt: skip
    record = _end(running, outcome, reason, figures)

    def decide(now: CandidateDoc | None) -> CandidateDoc | None:
        if now is None or now.running is None or now.running.experiment_id != running.experiment_id:
            return None if now is not None and any(
                e.experiment.experiment_id == running.experiment_id for e in now.ended
            ) else _moved(model, running)  # fmt: skip
        return now.model_copy(update={"running": None, "ended": [*now.ended, record][-ENDED_LIMIT:],
                                      "revision": now.revision + 1})  # fmt: skip

    update_document(registry.store, candidate_key(registry, model), CandidateDoc, decide)
    log.info("%s experiment %s ended: %s (%s)", model, running.experiment_id, outcome, reason)
    return record


def finish_interrupted(registry: Registry, model: str) -> ExperimentEnd | None:
    """Clear a candidate that is already production (a promote that crashed half way); None if none."""
    doc = read_candidates(registry, model)
    if doc.running is None or doc.running.version != registry.production_version(model):
        return None
    return end(registry, model, "promoted", "candidate found in production: finishing an interrupted promote",
               experiment_id=doc.running.experiment_id)  # fmt: skip


def _moved(model: str, running: Experiment) -> CandidateDoc:
    raise PointerMoved(f"{model}: experiment {running.experiment_id} changed while it was being ended")


def _end(running: Experiment, outcome: Outcome, reason: str, figures: dict | None = None) -> ExperimentEnd:
    return ExperimentEnd(experiment=running, outcome=outcome, reason=reason, ended_at=now_iso(),
                         figures=figures or {})  # fmt: skip


def _check(model: str) -> None:
    if model not in MODEL_NAMES:
        raise RegistryError(f"unknown model name {model!r}; expected one of {', '.join(MODEL_NAMES)}")
