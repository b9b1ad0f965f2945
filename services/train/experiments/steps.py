"""The daily judgement of the running recommender canary: figures, report and W&B first, then the pointers.

For data day D: the experiment's impressions of every day from its start to D (those that carry its
experiment_id), each answered by positive feedback with the same join as online evaluation
(`feedback.impressions.answers`), become per-user figures per arm (services/train/experiments/stats.py); the
guards come from the replicas' metrics (services/train/experiments/guards.py). The report goes to
reports/experiments/dt=D/recommender.json and W&B before the verdict is applied, so a crash in between
leaves a report and pointers that still agree with "running", and the rerun decides the same way (the
bootstrap is seeded by the experiment) and applies it. A promote that crashed after moving production
is finished by `experiments.finish_interrupted` at the next start.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from services.core import event_table, events, experiments
from services.core.event_table import IMPRESSION_SCHEMA
from services.core.experiments import Experiment, Outcome
from services.core.registry import ChecksumError
from services.core.registry_pointer import PointerMoved, RegistryError
from services.core.storage import ObjectStore
from services.train.context import Context
from services.train.experiments.guards import check_guards
from services.train.experiments.stats import ArmSample, Comparison, Decision, arm_sample, compare, decide
from services.train.feedback.impressions import (
    JOIN_SCHEMA,
    answer_feedback,
    answers,
    read_impressions,
    usable_table,
)

log = logging.getLogger(__name__)

MODEL = "recommender"
ARMS = ("production", "candidate")
EXPERIMENT_SCHEMA = pa.schema(
    [*JOIN_SCHEMA, *(IMPRESSION_SCHEMA.field(n) for n in ("user_id", "arm", "experiment_id"))]
)


def report_key(day: str, model: str = MODEL) -> str:
    """Where the day's judgement of a model's experiment goes."""
    return events.report_key("experiments", day, f"{model}.json")


def experiment_days(started_at: str, day: str) -> list[str]:
    """The data days from the experiment's start (its UTC date) to `day`, both included."""
    start = datetime.fromisoformat(started_at.replace("Z", "+00:00")).date()
    end = date.fromisoformat(day)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def read_arms(store: ObjectStore, experiment_id: str, days: list[str]) -> tuple[dict[str, ArmSample], dict]:
    """Per arm, the users' figures over the experiment's impressions of `days`, and what was read."""
    parts, read = [], {"impressions": 0, "dropped": 0, "without_user": 0, "days_with_impressions": []}

    def ours(batch: pa.Table) -> pa.Table:
        return batch.filter(pc.equal(batch["experiment_id"], experiment_id))

    for day in days:
        imps, dropped = usable_table(read_impressions(store, day, EXPERIMENT_SCHEMA, ours))
        read["dropped"] += dropped
        if imps.num_rows == 0:
            continue
        feedback, _ = answer_feedback(store, day)
        best, _ = answers(imps, feedback, events.ANSWER_WINDOW_MIN)
        parts.append(pa.table({"user_id": imps["user_id"], "arm": imps["arm"], "best": pa.array(best)}))
        read["impressions"] += imps.num_rows
        read["days_with_impressions"].append(day)
        del imps, feedback
        event_table.release_memory()
    table = pa.concat_tables(parts) if parts else pa.table({"user_id": pa.array([], pa.string()),
        "arm": pa.array([], pa.string()), "best": pa.array([], pa.int64())})  # fmt: skip
    # No user, no unit: such requests are served production and are not part of the experiment.
    has_user = pc.fill_null(pc.not_equal(table["user_id"], ""), False)
    read["without_user"] = table.num_rows - int(pc.sum(has_user).as_py() or 0)
    samples, users = {}, {}
    for arm in ARMS:
        rows = table.filter(pc.and_(has_user, pc.fill_null(pc.equal(table["arm"], arm), False)))
        encoded = pc.dictionary_encode(rows["user_id"].combine_chunks())
        samples[arm] = arm_sample(encoded.indices.to_numpy(zero_copy_only=False), rows["best"].to_numpy())
        users[arm] = encoded.dictionary
    # The hash puts a user in one arm for the whole experiment; anything else means a serving bug.
    read["users_in_both_arms"] = int(pc.sum(pc.is_in(users["candidate"], users["production"])).as_py() or 0)
    return samples, read


def seed_of(experiment_id: str) -> int:
    """The bootstrap's seed: fixed per experiment, so a rerun of a day gives the same interval."""
    return int.from_bytes(hashlib.blake2b(experiment_id.encode(), digest_size=8).digest(), "big")


def build_report(
    day: str, running: Experiment, days: list[str], comparison: Comparison, decision: Decision,
    guards: dict[str, Any], read: dict[str, Any], resamples: int,
) -> dict[str, Any]:  # fmt: skip
    """The day's judgement in the contract's shape (reports/experiments/dt=D/recommender.json)."""
    figures = comparison.to_report()
    versions = {"production": running.production_version, "candidate": running.version}
    return {
        "date": day,
        "experiment_id": running.experiment_id,
        "model": running.model,
        "candidate_version": running.version,
        "production_version": running.production_version,
        "share": running.share,
        "started_at": running.started_at,
        "days_running": len(days),
        "arms": {a: {"version": versions[a], **figures["arms"][a]} for a in ARMS},
        "difference": figures["difference"],
        "decision_interval": figures["decision_interval"],
        "guards": guards,
        "rule": running.rule.model_dump(),
        "verdict": decision.verdict,
        "reason": decision.reason,
        "outcome": decision.outcome,
        "read": {**read, "days": days, "bootstrap_resamples": resamples},
    }


def judge_experiment(ctx: Context, day: str) -> dict[str, Any]:
    """Judge the running recommender canary on data day `day`; report, log to W&B, then apply the verdict."""
    finished = experiments.finish_interrupted(ctx.registry, MODEL)
    if finished is not None:
        log.info("experiment %s: an interrupted promote finished", finished.experiment.experiment_id)
    running = experiments.read_candidates(ctx.registry, MODEL).running
    if running is None or running.mode != "canary":
        return {"running": False, "finished": finished.model_dump() if finished else None}
    production = ctx.registry.production_version(MODEL)
    if production != running.production_version:
        reason = (
            f"production is {production}, not {running.production_version} that the experiment was "
            "started against (moved by hand?): the arms no longer compare what they did"
        )
        outcome, reason = _apply(ctx, running, "aborted", reason, {})
        return {"running": True, "experiment_id": running.experiment_id, "verdict": None,
                "outcome": outcome, "reason": reason}  # fmt: skip
    days = experiment_days(running.started_at, day)
    if not days:
        reason = f"data day {day} is before the experiment started ({running.started_at}): not judged"
        log.info("experiment %s: %s", running.experiment_id, reason)
        return {"running": True, "experiment_id": running.experiment_id, "verdict": None, "reason": reason}
    samples, read = read_arms(ctx.store, running.experiment_id, days)
    resamples = ctx.settings.experiment_bootstrap
    comparison = compare(samples["production"], samples["candidate"], running.rule, resamples=resamples,
                         seed=seed_of(running.experiment_id))  # fmt: skip
    guards = check_guards(ctx.settings)
    decision = decide(comparison, running.rule, guards_ok=guards["ok"], guard_detail=guards["detail"],
                      days_running=len(days))  # fmt: skip
    report = build_report(day, running, days, comparison, decision, guards, read, resamples)
    key = report_key(day)
    ctx.store.put_json(key, report)  # first the report: the pointers follow it, never the other way
    log.info("experiment %s day %d: %s (%s); report %s", running.experiment_id, len(days), decision.verdict,
             decision.reason, key)  # fmt: skip
    _track(ctx, report)
    outcome = None
    if decision.outcome is not None:
        figures = {k: report[k] for k in ("date", "days_running", "arms", "difference", "decision_interval")}
        outcome, reason = _apply(ctx, running, decision.outcome, decision.reason, {**figures, "report": key})
        if outcome != decision.outcome:  # not applied as decided: the report says what happened instead
            ctx.store.put_json(key, {**report, "outcome": outcome, "reason": reason})
    return {"running": True, "experiment_id": running.experiment_id, "verdict": decision.verdict,
            "outcome": outcome, "reason": decision.reason, "report": key}  # fmt: skip


def _apply(
    ctx: Context, running: Experiment, outcome: Outcome, reason: str, figures: dict
) -> tuple[str, str]:
    """End the experiment; when the registry refuses (production or the experiment moved), record "aborted"."""
    try:
        experiments.end(ctx.registry, MODEL, outcome, reason, experiment_id=running.experiment_id,
                        figures=figures)  # fmt: skip
        return outcome, reason
    except (PointerMoved, ChecksumError) as exc:
        why = f"{outcome} not applied: {exc}"
        log.warning("experiment %s: %s", running.experiment_id, why)
    try:
        experiments.end(ctx.registry, MODEL, "aborted", why, experiment_id=running.experiment_id,
                        figures=figures)  # fmt: skip
    except RegistryError as exc:  # ended meanwhile by someone else (registry.sh): nothing left to end
        log.warning("experiment %s: not recorded as aborted either: %s", running.experiment_id, exc)
    return "aborted", why


def _track(ctx: Context, report: dict[str, Any]) -> None:
    """The day's figures to W&B, one run per experiment and day in the "experiments" group."""
    config = {k: report[k] for k in ("date", "experiment_id", "candidate_version", "production_version",
                                     "share", "started_at", "days_running", "rule")}  # fmt: skip
    summary: dict[str, Any] = {"verdict": report["verdict"], "guards_ok": report["guards"]["ok"]}
    for arm, figures in report["arms"].items():
        summary |= {f"{arm}/{k}": _nan(v) for k, v in figures.items() if k != "version"}
    for metric, d in (report["difference"] or {}).items():
        summary |= {f"difference/{metric}": d["estimate"], f"difference/{metric}_low": d["low"],
                    f"difference/{metric}_high": d["high"]}  # fmt: skip
    for metric, d in (report["decision_interval"] or {}).items():
        summary |= {f"decision/{metric}_low": d["low"], f"decision/{metric}_high": d["high"]}
    name = f"experiment-{report['experiment_id']}-{report['date']}"
    with ctx.tracker.run(name, config, group="experiments", job_type="experiment") as run:
        run.summary(summary)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
