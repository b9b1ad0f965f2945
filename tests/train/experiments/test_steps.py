"""The daily judgement of a canary on a real SeaweedFS server: impressions and feedback as the API uploads
them, the report, the pointers, and crashes between the two."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.core import events, experiments
from services.core.experiments import ExperimentRule, arm_of, effective_candidate, read_candidates
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train.context import Context
from services.train.experiments import steps as experiment_step
from services.train.experiments.steps import judge_experiment, report_key
from services.train.tracking import TrackedRun

RULE = ExperimentRule(delta=0.01, min_users=60, max_days=7)


class RecordingTracker:
    """Keeps each run's name, group and summary instead of writing W&B files."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    @contextmanager
    def run(self, name: str, config: dict[str, Any], group: str | None = None,
            job_type: str = "train") -> Iterator[TrackedRun]:  # fmt: skip
        fake = SimpleNamespace(summary={})
        self.runs.append({"name": name, "group": group, "config": config, "summary": fake.summary})
        yield TrackedRun(run=fake, name=name)


def _publish(registry: Registry, payload: bytes, promote: bool) -> str:
    return registry.publish(
        "recommender", {"model.pt": payload}, {"metrics": {}}, promote=promote, reason="test"
    ).version


@pytest.fixture
def ctx(s3_settings: Settings, store: ObjectStore, registry: Registry) -> Context:
    return Context(s3_settings, store, registry, RecordingTracker())  # type: ignore[arg-type]


def start(ctx: Context) -> tuple[str, str, experiments.Experiment]:
    prod = _publish(ctx.registry, b"production", promote=True)
    cand = _publish(ctx.registry, b"candidate", promote=False)
    exp = experiments.start(ctx.registry, "recommender", cand, share=0.5, rule=RULE, started_by="test",
                            reason="valid NDCG@10 better")  # fmt: skip
    return prod, cand, exp


def start_day(exp: experiments.Experiment) -> str:
    return exp.started_at[:10]


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def traffic(store: ObjectStore, exp: experiments.Experiment, days: list[str], p_hit: dict[str, float],
            users: int = 300, seed: int = 0) -> dict[str, int]:  # fmt: skip
    """Users ask for recommendations on each day and like one shown movie with their arm's probability.

    Uploaded as replicas upload them (one batch per replica and day); also a request without a user
    and one served before the experiment, which must not count. Returns users per arm.
    """
    rng = random.Random(seed)
    per_arm = {"production": 0, "candidate": 0}
    for d, day in enumerate(days):
        imps, feedback = [], []
        for u in range(users):
            user = f"user-{u}"
            arm = arm_of(exp.experiment_id, user, exp.share)
            per_arm[arm] += d == 0
            version = exp.version if arm == "candidate" else exp.production_version
            for k in range(rng.randint(1, 3)):
                rid = f"{day}-{u}-{k}"
                when = datetime.fromisoformat(f"{day}T08:00:00+00:00") + timedelta(hours=k, seconds=7 * u)
                ts = _iso(when)
                items = rng.sample(range(1, 200), 10)
                imps.append({"event_id": rid, "request_id": rid, "ts": ts, "replica": "api-1", "user_id": user,
                             "model_version": version, "strategy": "sequential", "fallback": False,
                             "items": items, "catalog_size": 200, "arm": arm,
                             "experiment_id": exp.experiment_id})  # fmt: skip
                if rng.random() < p_hit[arm]:
                    rank = rng.randrange(3)
                    feedback.append({"event_id": f"f-{rid}", "ts": _iso(when + timedelta(seconds=90)),
                                     "replica": "api-1", "user_id": user, "tmdb_id": items[rank], "kind": "like",
                                     "value": None, "request_id": rid, "position": rank + 1})  # fmt: skip
        # Not part of the experiment: no user id, and a response served with no experiment running.
        imps.append({**imps[0], "event_id": f"{day}-anon", "request_id": f"{day}-anon", "user_id": None,
                     "arm": "production"})  # fmt: skip
        imps.append({**imps[0], "event_id": f"{day}-old", "request_id": f"{day}-old", "experiment_id": None,
                     "arm": None, "user_id": "user-old"})  # fmt: skip
        store.put_bytes(events.batch_key("impressions", day, "api-1", 0), events.encode_lines(imps))
        store.put_bytes(events.batch_key("feedback", day, "api-1", 0), events.encode_lines(feedback))
    return per_arm


def test_nothing_runs_nothing_is_judged(ctx: Context) -> None:
    _publish(ctx.registry, b"production", promote=True)
    assert judge_experiment(ctx, "2026-12-01") == {"running": False, "finished": None}


def test_a_better_candidate_is_promoted_after_the_report_is_written(ctx: Context) -> None:
    prod, cand, exp = start(ctx)
    first = start_day(exp)
    days = [first, (date.fromisoformat(first) + timedelta(days=1)).isoformat()]
    per_arm = traffic(ctx.store, exp, days, {"production": 0.15, "candidate": 0.5})
    result = judge_experiment(ctx, days[1])

    assert (result["verdict"], result["outcome"]) == ("promote", "promoted")
    report = ctx.store.get_json(report_key(days[1]))
    assert result["report"] == report_key(days[1]) == f"reports/experiments/dt={days[1]}/recommender.json"
    assert {k: report[k] for k in ("date", "experiment_id", "candidate_version", "production_version", "share",
                                   "days_running", "verdict", "outcome")} == {
        "date": days[1], "experiment_id": exp.experiment_id, "candidate_version": cand,
        "production_version": prod, "share": 0.5, "days_running": 2, "verdict": "promote", "outcome": "promoted",
    }  # fmt: skip
    arms = report["arms"]
    assert (arms["production"]["users"], arms["candidate"]["users"]) == (
        per_arm["production"],
        per_arm["candidate"],
    )
    assert (
        arms["candidate"]["version"] == cand
        and arms["candidate"]["hit_rate"] > arms["production"]["hit_rate"]
    )
    assert report["read"]["days_with_impressions"] == days and report["read"]["without_user"] == 2
    assert report["read"]["users_in_both_arms"] == 0
    hit = report["difference"]["hit_rate"]
    assert 0 < report["decision_interval"]["hit_rate"]["low"] < hit["low"] < hit["estimate"] < hit["high"]
    assert report["guards"]["measured"] is False and report["guards"]["ok"] is True
    assert report["rule"]["min_users"] == 60 and "hit rate +0." in report["reason"]
    # Then the pointers: production is the candidate, the experiment ended with its figures.
    assert ctx.registry.production_version("recommender") == cand
    doc = read_candidates(ctx.registry, "recommender")
    assert doc.running is None and doc.ended[-1].outcome == "promoted"
    assert doc.ended[-1].figures["report"] == report_key(days[1])
    assert doc.ended[-1].figures["difference"]["hit_rate"] == hit
    [run] = ctx.tracker.runs  # type: ignore[attr-defined]
    assert run["group"] == "experiments" and run["summary"]["verdict"] == "promote"
    assert run["summary"]["difference/hit_rate_low"] == hit["low"]


def test_a_worse_candidate_is_rolled_back_and_production_stays(ctx: Context) -> None:
    prod, _, exp = start(ctx)
    traffic(ctx.store, exp, [start_day(exp)], {"production": 0.5, "candidate": 0.15}, seed=1)
    result = judge_experiment(ctx, start_day(exp))
    assert (result["verdict"], result["outcome"]) == ("rollback", "rolled_back")
    assert ctx.registry.production_version("recommender") == prod
    doc = read_candidates(ctx.registry, "recommender")
    assert doc.running is None and doc.ended[-1].outcome == "rolled_back"
    assert doc.ended[-1].reason.startswith("candidate worse: hit rate")
    assert ctx.store.get_json(report_key(start_day(exp)))["outcome"] == "rolled_back"


def test_too_few_users_keep_it_running_and_a_day_before_the_start_is_not_judged(ctx: Context) -> None:
    prod, _, exp = start(ctx)
    traffic(ctx.store, exp, [start_day(exp)], {"production": 0.15, "candidate": 0.5}, users=40, seed=2)
    result = judge_experiment(ctx, start_day(exp))
    assert (result["verdict"], result["outcome"]) == ("continue", None) and "60 needed per arm" in result[
        "reason"
    ]
    assert read_candidates(ctx.registry, "recommender").running == exp
    before = (date.fromisoformat(start_day(exp)) - timedelta(days=1)).isoformat()
    assert judge_experiment(ctx, before)["verdict"] is None
    assert ctx.registry.production_version("recommender") == prod


def test_a_crash_after_the_report_before_the_pointer_is_finished_by_the_rerun(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, cand, exp = start(ctx)
    day = start_day(exp)
    traffic(ctx.store, exp, [day], {"production": 0.15, "candidate": 0.5}, seed=3)
    real_end = experiments.end

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed before touching the registry")

    monkeypatch.setattr(experiments, "end", crash)
    with pytest.raises(RuntimeError, match="killed"):
        judge_experiment(ctx, day)
    report = ctx.store.get_json(report_key(day))
    assert report["verdict"] == "promote"  # the report is there, the pointers still say "running"
    assert ctx.registry.production_version("recommender") == prod
    assert read_candidates(ctx.registry, "recommender").running == exp

    monkeypatch.setattr(experiments, "end", real_end)
    again = judge_experiment(ctx, day)
    assert again["outcome"] == "promoted" and ctx.registry.production_version("recommender") == cand
    assert (
        ctx.store.get_json(report_key(day))["difference"] == report["difference"]
    )  # same seed, same interval
    assert read_candidates(ctx.registry, "recommender").running is None


def test_a_crash_after_the_pointer_leaves_no_split_and_the_rerun_clears_the_candidate(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cand, exp = start(ctx)
    day = start_day(exp)
    traffic(ctx.store, exp, [day], {"production": 0.15, "candidate": 0.5}, seed=4)
    real_promote = ctx.registry.promote

    def promote_then_die(*args: Any, **kwargs: Any) -> None:
        real_promote(*args, **kwargs)
        raise RuntimeError("killed after moving production")

    monkeypatch.setattr(ctx.registry, "promote", promote_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        judge_experiment(ctx, day)
    doc = read_candidates(ctx.registry, "recommender")
    assert ctx.registry.production_version("recommender") == cand and doc.running == exp
    assert effective_candidate(doc, cand) is None  # serving sees no experiment: both arms would be one model

    monkeypatch.setattr(ctx.registry, "promote", real_promote)
    again = judge_experiment(ctx, day)
    assert again["running"] is False and again["finished"]["outcome"] == "promoted"
    doc = read_candidates(ctx.registry, "recommender")
    assert doc.running is None and [e.outcome for e in doc.ended] == ["promoted"]


def test_production_moved_by_hand_aborts_the_experiment(ctx: Context) -> None:
    _, _, exp = start(ctx)
    hand = _publish(ctx.registry, b"chosen by hand", promote=False)
    ctx.registry.promote("recommender", hand, reason="operator")
    traffic(ctx.store, exp, [start_day(exp)], {"production": 0.15, "candidate": 0.5}, seed=5)
    result = judge_experiment(ctx, start_day(exp))
    assert result["outcome"] == "aborted" and "moved by hand" in result["reason"]
    assert ctx.registry.production_version("recommender") == hand
    doc = read_candidates(ctx.registry, "recommender")
    assert doc.running is None and doc.ended[-1].outcome == "aborted"


def test_production_moved_during_the_judgement_is_recorded_as_aborted_not_a_crash(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, exp = start(ctx)
    day = start_day(exp)
    traffic(ctx.store, exp, [day], {"production": 0.15, "candidate": 0.5}, seed=6)
    hand = _publish(ctx.registry, b"chosen by hand", promote=False)

    def guards_while_an_operator_promotes(settings: Settings) -> dict[str, Any]:
        ctx.registry.promote("recommender", hand, reason="operator")
        return {"ok": True, "measured": False, "detail": "not measured: SERVE_URL not set"}

    monkeypatch.setattr(experiment_step, "check_guards", guards_while_an_operator_promotes)
    result = judge_experiment(ctx, day)
    assert (result["verdict"], result["outcome"]) == ("promote", "aborted")
    assert ctx.registry.production_version("recommender") == hand
    report = ctx.store.get_json(report_key(day))
    assert report["outcome"] == "aborted" and report["reason"].startswith("promoted not applied")
    assert read_candidates(ctx.registry, "recommender").ended[-1].outcome == "aborted"


def test_a_slow_candidate_on_the_replicas_is_rolled_back_at_once(ctx: Context) -> None:
    from tests.train.experiments.test_guards import replica
    from tests.train.experiments.test_guards import traffic as served

    prod, _, exp = start(ctx)
    traffic(ctx.store, exp, [start_day(exp)], {"production": 0.15, "candidate": 0.5}, users=40, seed=7)
    with replica(served(prod_ms=8, cand_ms=60)) as url:
        ctx.settings = ctx.settings.model_copy(update={"serve_url": url})
        result = judge_experiment(ctx, start_day(exp))
    # Too few users for the statistics, but the guard does not wait for them.
    assert (result["verdict"], result["outcome"]) == ("rollback", "rolled_back")
    assert result["reason"].startswith("guard failed: candidate p99")
    report = ctx.store.get_json(report_key(start_day(exp)))
    assert report["guards"]["measured"] and not report["guards"]["latency"]["ok"]
    assert report["guards"]["replicas"]["scraped"] == [url]
    assert ctx.registry.production_version("recommender") == prod
