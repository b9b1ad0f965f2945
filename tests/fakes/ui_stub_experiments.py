"""The stand-in API's canned GET /model/experiments: a 20% canary four days in, and two recent ends."""

from __future__ import annotations

from typing import Any

from tests.fakes.ui_stub_data import PREVIOUS_RECOMMENDER, RECOMMENDER_VERSION

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
            reason: str) -> dict[str, Any]:  # fmt: skip
    """A judge's daily report: figures since the start, the 95% interval and the wider decision one."""
    diff = round(hits[1] - hits[0], 4)
    mrr = (round(hits[0] * 0.41, 4), round(hits[1] * 0.42, 4))
    decision = {m: {"low": round(e - 1.26 * h, 4), "high": round(e + 1.26 * h, 4), "confidence": 0.9929}
                for m, e, h in (("hit_rate", diff, half), ("mrr", round(mrr[1] - mrr[0], 4), half / 2))}  # fmt: skip
    return {
        "date": date, "experiment_id": RUNNING_EXPERIMENT["experiment_id"], "model": "recommender",
        "candidate_version": CANDIDATE_RECOMMENDER, "production_version": RECOMMENDER_VERSION, "share": 0.2,
        "started_at": RUNNING_EXPERIMENT["started_at"], "days_running": day,
        "arms": {"production": _arm(RECOMMENDER_VERSION, users[0], users[0] * 3, hits[0], mrr[0]),
                 "candidate": _arm(CANDIDATE_RECOMMENDER, users[1], users[1] * 3, hits[1], mrr[1])},
        "difference": {"hit_rate": _interval(diff, half), "mrr": _interval(round(mrr[1] - mrr[0], 4), half / 2)},
        "decision_interval": decision,
        "guards": {"ok": True, "measured": True, "detail": "errors 0.1% vs 0.1%, p95 latency 38 ms vs 41 ms",
                   "errors": {"production": 0.001, "candidate": 0.001},
                   "latency": {"production": 0.038, "candidate": 0.041}},
        "rule": dict(RULE), "verdict": "continue", "reason": reason, "outcome": None,
    }  # fmt: skip


# Four days of a 20% canary: the interval narrows as users come, not yet enough of them in the candidate arm.
RUNNING_DAYS: list[dict[str, Any]] = [
    _report("2025-03-05", 1, (161, 41), (0.236, 0.293), 0.142, "41 of the 200 users needed in the candidate arm"),
    _report("2025-03-06", 2, (338, 86), (0.240, 0.279), 0.101, "86 of the 200 users needed in the candidate arm"),
    _report("2025-03-07", 3, (512, 131), (0.242, 0.271), 0.081, "131 of the 200 users needed in the candidate arm"),
    _report("2025-03-08", 4, (703, 182), (0.243, 0.266), 0.068, "182 of the 200 users needed in the candidate arm"),
]  # fmt: skip

RECENT_EXPERIMENTS: list[dict[str, Any]] = [
    {
        "experiment": _experiment("recommender-20250302T123000Z-81c2", RECOMMENDER_VERSION, PREVIOUS_RECOMMENDER,
                                  0.5, "2025-03-02T12:30:00Z", "pipeline", "validation NDCG@10 0.102 against 0.094"),
        "outcome": "promoted", "ended_at": "2025-03-05T02:10:00Z",
        "reason": "hit rate difference +5.8 pts, interval [+1.9, +9.6] above −1.0 pts with 214 and 221 users",
        "figures": {"hit_rate": {"estimate": 0.058, "low": 0.019, "high": 0.096}},
    },
    {
        "experiment": _experiment("recommender-20250227T090000Z-5d10", POPULARITY_RECOMMENDER, PREVIOUS_RECOMMENDER,
                                  0.5, "2025-02-27T09:00:00Z", "simulate", "simulation: a worse candidate"),
        "outcome": "rolled_back", "ended_at": "2025-02-28T02:05:00Z",
        "reason": "hit rate difference −9.4 pts, interval [−13.1, −5.6] entirely below 0",
        "figures": {"hit_rate": {"estimate": -0.094, "low": -0.131, "high": -0.056}},
    },
]  # fmt: skip

EXPERIMENTS: dict[str, Any] = {
    "running": [{"experiment": RUNNING_EXPERIMENT, "days": RUNNING_DAYS, "served": True}],
    "recent": RECENT_EXPERIMENTS,
    "updated_at": "2025-03-08T02:15:00Z",
}
