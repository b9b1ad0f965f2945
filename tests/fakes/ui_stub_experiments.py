"""The stand-in API's canned GET /model/experiments: a 20% canary four days in, and two recent ends."""

from __future__ import annotations

from typing import Any

from tests.fakes.ui_stub_data import PREVIOUS_RECOMMENDER, RATING_VERSION, RECOMMENDER_VERSION

CANDIDATE_RECOMMENDER = "20250305T121500Z-7b7b7b"
POPULARITY_RECOMMENDER = "20250226T121500Z-0p0p0p"
RULE = {"metric": "hit_rate", "guard_metric": "mrr", "delta": 0.01, "min_users": 200, "max_days": 7,
        "confidence": 0.95}  # fmt: skip


def _experiment(experiment_id: str, version: str, production: str, share: float, started_at: str,
                started_by: str, reason: str) -> dict[str, Any]:  # fmt: skip
    return {"experiment_id": experiment_id, "model": "recommender", "mode": "canary", "version": version,
            "production_version": production, "share": share, "started_at": started_at,
            "started_by": started_by, "reason": reason, "rule": dict(RULE)}  # fmt: skip


RUNNING_EXPERIMENT = _experiment(
    "recommender-20250305T124000Z-3f9a", CANDIDATE_RECOMMENDER, RECOMMENDER_VERSION, 0.2,
    "2025-03-05T12:40:00Z", "pipeline", "validation NDCG@10 0.108 against production's 0.102",
)  # fmt: skip


def _arm(version: str, users: int, impressions: int, hit_rate: float, mrr: float) -> dict[str, Any]:
    return {"version": version, "users": users, "impressions": impressions, "hit_rate": hit_rate, "mrr": mrr}


def _interval(estimate: float, half: float) -> dict[str, float]:
    return {"estimate": estimate, "low": round(estimate - half, 4), "high": round(estimate + half, 4)}


def _report(date: str, day: int, users: tuple[int, int], hits: tuple[float, float], half: float,
            versions: tuple[str, str] = (RECOMMENDER_VERSION, CANDIDATE_RECOMMENDER)) -> dict[str, Any]:  # fmt: skip
    """A judge's daily report: figures since the start, the 95% interval and the wider decision one."""
    diff = round(hits[1] - hits[0], 4)
    mrr = (round(hits[0] * 0.41, 4), round(hits[1] * 0.42, 4))
    decision = {m: {"low": round(e - 1.26 * h, 4), "high": round(e + 1.26 * h, 4), "confidence": 0.9929}
                for m, e, h in (("hit_rate", diff, half), ("mrr", round(mrr[1] - mrr[0], 4), half / 2))}  # fmt: skip
    return {
        "date": date, "experiment_id": RUNNING_EXPERIMENT["experiment_id"], "model": "recommender",
        "candidate_version": versions[1], "production_version": versions[0], "share": 0.2,
        "started_at": RUNNING_EXPERIMENT["started_at"], "days_running": day,
        "arms": {"production": _arm(versions[0], users[0], users[0] * 3, hits[0], mrr[0]),
                 "candidate": _arm(versions[1], users[1], users[1] * 3, hits[1], mrr[1])},
        "difference": {"hit_rate": _interval(diff, half), "mrr": _interval(round(mrr[1] - mrr[0], 4), half / 2)},
        "decision_interval": decision,
        "guards": {"ok": True, "measured": True, "judged": True,
                   "detail": "error rate 0.10% vs 0.10%, p99 41.0 ms vs 38.0 ms: within limits"},
        "rule": dict(RULE), "verdict": "continue", "outcome": None,
        "reason": f"day {day} of at most 7: {users[1]} candidate and {users[0]} production users, 200 needed per arm",
    }  # fmt: skip


# Four days of a 20% canary: the interval narrows as users come, not yet enough of them in the candidate arm.
RUNNING_DAYS: list[dict[str, Any]] = [
    _report("2025-03-05", 1, (161, 41), (0.236, 0.293), 0.142),
    _report("2025-03-06", 2, (338, 86), (0.240, 0.279), 0.101),
    _report("2025-03-07", 3, (512, 131), (0.242, 0.271), 0.081),
    _report("2025-03-08", 4, (703, 182), (0.243, 0.266), 0.068),
]


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """What an ended experiment keeps of its deciding report (services/train/experiments/steps.py)."""
    keep = ("date", "days_running", "arms", "difference", "decision_interval")
    return {k: report[k] for k in keep} | {
        "report": f"reports/experiments/dt={report['date']}/recommender.json"
    }


RECENT_EXPERIMENTS: list[dict[str, Any]] = [
    {
        "experiment": _experiment("recommender-20250302T123000Z-81c2", RECOMMENDER_VERSION, PREVIOUS_RECOMMENDER,
                                  0.5, "2025-03-02T12:30:00Z", "pipeline", "validation NDCG@10 0.102 against 0.094"),
        "outcome": "promoted", "ended_at": "2025-03-05T02:10:00Z",
        "reason": "candidate no worse than -0.01: hit rate +0.0580 (99.29% interval +0.0071 to +0.1090) and MRR "
                  "+0.0210 (99.29% interval -0.0050 to +0.0470); 221 candidate and 214 production users",
        "figures": _figures(_report("2025-03-04", 3, (214, 221), (0.19, 0.248), 0.04,
                                    (PREVIOUS_RECOMMENDER, RECOMMENDER_VERSION))),
    },
    {
        "experiment": _experiment("recommender-20250227T090000Z-5d10", POPULARITY_RECOMMENDER, PREVIOUS_RECOMMENDER,
                                  0.5, "2025-02-27T09:00:00Z", "simulate", "simulation: a worse candidate"),
        "outcome": "rolled_back", "ended_at": "2025-02-28T02:05:00Z",
        "reason": "candidate worse: hit rate -0.0940 (99.29% interval -0.1570 to -0.0310) is below 0; 236 "
                  "candidate and 229 production users",
        "figures": _figures(_report("2025-02-27", 1, (229, 236), (0.281, 0.187), 0.037,
                                    (PREVIOUS_RECOMMENDER, POPULARITY_RECOMMENDER))),
    },
]  # fmt: skip

EXPERIMENTS: dict[str, Any] = {
    "running": [{"experiment": RUNNING_EXPERIMENT, "days": RUNNING_DAYS, "served": True}],
    "recent": RECENT_EXPERIMENTS,
    "updated_at": "2025-03-08T02:15:00Z",
}

SHADOW_VERSION = "20250306T000000Z-r9r9r9"
SHADOW_EXPERIMENT = {**_experiment("rating-20250306T000000Z-aa11", SHADOW_VERSION, RATING_VERSION, 0.0,
                                   "2025-03-06T00:00:00Z", "registry.sh", "started by hand (registry.sh)"),
                     "model": "rating", "mode": "shadow"}  # fmt: skip


def _errors(count: int, rmse: float) -> dict[str, Any]:
    return {"count": count, "rmse": rmse, "mae": round(rmse * 0.78, 4), "sse": count * rmse**2, "sae": 0.0}


def _shadow_day(date: str, day: int, movies: int, prod: float, shadow: float, pooled: tuple[int, float, float],
                interval: bool = True) -> dict[str, Any]:  # fmt: skip
    """A rating shadow's daily report (services/train/experiments/shadow.py), its live record inside."""
    diff = {"rmse": {"estimate": round(shadow - prod, 4), "low": round(shadow - prod - 0.09, 4),
                     "high": round(shadow - prod + 0.07, 4), "confidence": 0.95}} if interval else None  # fmt: skip
    live = {"experiment_id": SHADOW_EXPERIMENT["experiment_id"], "shadow_version": SHADOW_VERSION,
            "production_version": RATING_VERSION, "status": "ok", "movies": movies, "excluded_seen_by_shadow": 2,
            "production": _errors(movies, prod), "shadow": _errors(movies, shadow), "difference": diff}  # fmt: skip
    window = {"days": day, "production": {"count": pooled[0], "rmse": pooled[1], "mae": None},
              "shadow": {"count": pooled[0], "rmse": pooled[2], "mae": None}}  # fmt: skip
    return {"date": date, "experiment_id": SHADOW_EXPERIMENT["experiment_id"], "model": "rating", "mode": "shadow",
            "candidate_version": SHADOW_VERSION, "production_version": RATING_VERSION, "share": 0.0,
            "started_at": SHADOW_EXPERIMENT["started_at"], "days_running": day, "live": live, "window": window,
            "rule": dict(RULE), "verdict": "continue", "outcome": None,
            "reason": "shadow: its live record is evidence; it is promoted or rolled back by hand (registry.sh)"}  # fmt: skip


# Two days of a rating challenger in shadow: 74 then 18 new labelled movies (too few for an interval).
RATING_SHADOW: dict[str, Any] = {
    "experiment": SHADOW_EXPERIMENT,
    "days": [_shadow_day("2025-03-06", 1, 74, 1.31, 1.18, (74, 1.31, 1.18)),
             _shadow_day("2025-03-07", 2, 18, 0.92, 0.95, (92, 1.24, 1.14), interval=False)],
    "served": True,
}  # fmt: skip
