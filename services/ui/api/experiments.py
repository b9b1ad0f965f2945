"""GET /model/experiments as the UI reads it: the running experiment with its daily reports, recent ends.

The API answers {"running": [{"experiment": Experiment, "days": [daily report, oldest first]}],
"recent": [ExperimentEnd, newest first]} (services/core/experiments.py for the records; the daily reports
are the judge's reports/experiments/dt=D/<model>.json). Readers are lenient: extra fields are ignored, a
missing figure is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ARMS = ("production", "candidate")


@dataclass(frozen=True)
class Interval:
    """A difference (candidate − production) with its interval; any part may be unknown."""

    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ArmFigures:
    """One arm on one day, counted from the experiment's start: its version, users and measures."""

    version: str
    users: int
    impressions: int
    hit_rate: float | None
    mrr: float | None


@dataclass(frozen=True)
class ExperimentDay:
    """The judge's report of one data day: arms so far, the difference with its intervals, the verdict."""

    date: str
    days_running: int
    arms: Mapping[str, ArmFigures]  # "production", "candidate"
    difference: Mapping[str, Interval]  # metric -> the 95% interval
    decision: Mapping[str, Interval]  # metric -> the interval the rule decides on (wider: several looks)
    guards_ok: bool | None
    guards_detail: str
    verdict: str  # "promote" | "rollback" | "continue"
    reason: str


@dataclass(frozen=True)
class Rule:
    """How the experiment is decided."""

    metric: str = "hit_rate"
    guard_metric: str = "mrr"
    delta: float = 0.01
    min_users: int = 200
    max_days: int = 7
    confidence: float = 0.95


@dataclass(frozen=True)
class Experiment:
    """A started experiment: which candidate against which production, for what share of users."""

    experiment_id: str
    model: str
    mode: str  # "canary" | "shadow"
    version: str
    production_version: str | None
    share: float
    started_at: str
    started_by: str
    reason: str
    rule: Rule


@dataclass(frozen=True)
class ShadowDay:
    """A rating shadow's day: both versions' errors on the day's new labelled movies, and pooled so far."""

    date: str
    days_running: int
    status: str
    movies: int  # new labelled movies neither version saw in training
    rmse: Mapping[str, float | None]  # "production", "shadow": that day
    difference: Interval | None  # shadow − production RMSE that day, with its 95% interval over movies
    window_movies: int
    window_rmse: Mapping[str, float | None]  # "production", "shadow": pooled over the shadow's days


@dataclass(frozen=True)
class Running:
    """A running experiment and its daily reports, oldest first (a shadow's in shadow_days)."""

    experiment: Experiment
    days: tuple[ExperimentDay, ...]
    served: bool | None = None  # whether the replica that answered serves its candidate (None: not said)
    shadow_days: tuple[ShadowDay, ...] = ()


@dataclass(frozen=True)
class Ended:
    """How an experiment ended, and why."""

    experiment: Experiment
    outcome: str  # "promoted" | "rolled_back" | "inconclusive" | "aborted"
    reason: str
    ended_at: str
    difference: Interval | None = None  # of the rule's metric, on the deciding day (None: no report decided)
    users: tuple[int, int] | None = None  # production, candidate on the deciding day


@dataclass(frozen=True)
class Experiments:
    """What GET /model/experiments says: the running experiments and the recent ends, newest first."""

    running: tuple[Running, ...]
    recent: tuple[Ended, ...]

    @property
    def never_ran(self) -> bool:
        """True when no experiment ever ran (nothing running, nothing ended)."""
        return not self.running and not self.recent


def read_experiments(body: Any) -> Experiments:
    """Parse /model/experiments' answer (KeyError/TypeError/ValueError when it has another shape)."""
    if not isinstance(body, Mapping):
        raise TypeError("expected an object")
    running = tuple(_running(row) for row in body.get("running") or [])
    recent = tuple(_ended(row) for row in body.get("recent") or [])
    return Experiments(running, recent)


def _running(raw: Mapping[str, Any]) -> Running:
    experiment = _experiment(raw["experiment"])
    served = raw.get("served") if isinstance(raw.get("served"), bool) else None
    reports = raw.get("days") or []
    if experiment.mode == "shadow":
        return Running(experiment, (), served, tuple(_shadow_day(d) for d in reports))
    return Running(experiment, tuple(_day(d) for d in reports), served)


def _shadow_day(raw: Mapping[str, Any]) -> ShadowDay:
    live, window = raw.get("live") or {}, raw.get("window") or {}
    diff = (live.get("difference") or {}).get("rmse")
    return ShadowDay(
        date=str(raw["date"]),
        days_running=int(raw.get("days_running") or 0),
        status=str(live.get("status") or ""),
        movies=int(live.get("movies") or 0),
        rmse={arm: _num((live.get(arm) or {}).get("rmse")) for arm in ("production", "shadow")},
        difference=_interval(diff) if diff else None,
        window_movies=int((window.get("shadow") or {}).get("count") or 0),
        window_rmse={arm: _num((window.get(arm) or {}).get("rmse")) for arm in ("production", "shadow")},
    )


def _ended(raw: Mapping[str, Any]) -> Ended:
    experiment = _experiment(raw["experiment"])
    figures = raw.get("figures") or {}
    diff = (figures.get("difference") or {}).get(experiment.rule.metric)
    arms = figures.get("arms") or {}
    users = tuple(int((arms.get(a) or {}).get("users") or 0) for a in ARMS) if arms else None
    return Ended(
        experiment=experiment,
        outcome=str(raw.get("outcome") or "unknown"),
        reason=str(raw.get("reason") or ""),
        ended_at=str(raw.get("ended_at") or ""),
        difference=_interval(diff) if diff else None,
        users=users,  # type: ignore[arg-type]
    )


def _experiment(raw: Mapping[str, Any]) -> Experiment:
    rule = raw.get("rule") or {}
    defaults = Rule()
    return Experiment(
        experiment_id=str(raw["experiment_id"]),
        model=str(raw.get("model") or "recommender"),
        mode=str(raw.get("mode") or "canary"),
        version=str(raw["version"]),
        production_version=_str(raw.get("production_version")),
        share=float(raw.get("share") or 0.0),
        started_at=str(raw.get("started_at") or ""),
        started_by=str(raw.get("started_by") or ""),
        reason=str(raw.get("reason") or ""),
        rule=Rule(
            metric=str(rule.get("metric") or defaults.metric),
            guard_metric=str(rule.get("guard_metric") or defaults.guard_metric),
            delta=float(rule.get("delta", defaults.delta)),
            min_users=int(rule.get("min_users") or defaults.min_users),
            max_days=int(rule.get("max_days") or defaults.max_days),
            confidence=float(rule.get("confidence") or defaults.confidence),
        ),
    )


def _day(raw: Mapping[str, Any]) -> ExperimentDay:
    guards = raw.get("guards") or {}
    return ExperimentDay(
        date=str(raw["date"]),
        days_running=int(raw.get("days_running") or 0),
        arms={arm: _arm(raw["arms"][arm]) for arm in ARMS if arm in (raw.get("arms") or {})},
        difference={str(m): _interval(i) for m, i in (raw.get("difference") or {}).items()},
        decision={str(m): _interval(i) for m, i in (raw.get("decision_interval") or {}).items()},
        guards_ok=guards.get("ok") if isinstance(guards.get("ok"), bool) else None,
        guards_detail=str(guards.get("detail") or ""),
        verdict=str(raw.get("verdict") or "continue"),
        reason=str(raw.get("reason") or ""),
    )


def _arm(raw: Mapping[str, Any]) -> ArmFigures:
    return ArmFigures(
        version=str(raw.get("version") or "unknown"),
        users=int(raw.get("users") or 0),
        impressions=int(raw.get("impressions") or 0),
        hit_rate=_num(raw.get("hit_rate")),
        mrr=_num(raw.get("mrr")),
    )


def _interval(raw: Any) -> Interval:
    raw = raw if isinstance(raw, Mapping) else {}
    return Interval(_num(raw.get("estimate")), _num(raw.get("low")), _num(raw.get("high")))


def _num(value: Any) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
