"""The statistics of a recommender canary: per-user figures, a bootstrap interval, and the decision.

The unit is the user, not the impression. A user who asks for recommendations forty times is one
draw from the population of users, not forty: counting impressions would let one heavy user swing
the result and make the interval far too narrow (impressions of one user are correlated). So each
user gets one hit rate (the share of their responses with at least one answering positive) and one
MRR (the mean of 1 / rank of each response's best answered movie, 0 when none), and an arm's figure
is the mean over its users. Users are assigned to the arms by a hash, so the arms are independent
samples: the interval of the difference (candidate - production) resamples users within each arm
independently (a percentile bootstrap, seeded, so a rerun of the same day gives the same figures).

Peeking. The experiment is judged every day, up to `max_days` times, and each look may stop it. A
95% interval read seven times and acted on the first time it excludes the margin errs far more often
than 5% of the time. The decision therefore reads a wider interval, at confidence
1 - (1 - confidence) / max_days (99.29% for 95% over 7 looks): by the union bound the chance that
any of the planned looks errs is at most 5%, whatever the correlation between looks. The report
shows both intervals: the 95% one describes the data; the Bonferroni one decides.

Why not a sequential test (an alpha-spending boundary, or an always-valid mSPRT)? Both would stop a
little sooner on a clear effect, but need either an information schedule planned in advance (users
arrive unevenly, and a day may be skipped) or a parametric model of per-user figures and a mixing
prior. Bonferroni over the known maximum of looks needs neither, is valid for any number of looks up
to it, and its cost is a somewhat wider interval; at our volumes that costs days, not correctness.

The rule (`decide`): a failed guard (errors, latency) rolls back at once. With at least `min_users`
users in each arm, the candidate is rolled back when either metric's decision interval lies below 0
(it is shown to be worse: checked first, so a candidate that is worse by less than delta is not
promoted), and promoted when both metrics' lower bounds are above -delta (non-inferiority: a fresher
model that is no worse is taken). Otherwise it runs on, and after `max_days` it is rolled back as
inconclusive. Promotion needs both metrics (an intersection of tests: no further correction); a
rollback on either metric can only make rollbacks, the safe side, more frequent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from services.core.experiments import ExperimentRule, Outcome

METRICS = ("hit_rate", "mrr")
LABELS = {"hit_rate": "hit rate", "mrr": "MRR"}
# Bounded memory: each bootstrap chunk gathers at most this many user values (x 8 bytes).
CHUNK_VALUES = 1 << 21
Verdict = Literal["promote", "rollback", "continue"]


@dataclass(frozen=True)
class ArmSample:
    """One arm's users: each user's hit rate and MRR over their own responses."""

    hit_rate: np.ndarray
    mrr: np.ndarray
    impressions: int

    @property
    def users(self) -> int:
        """How many users the arm has seen."""
        return len(self.hit_rate)

    def values(self, metric: str) -> np.ndarray:
        """The per-user values of a metric."""
        return {"hit_rate": self.hit_rate, "mrr": self.mrr}[metric]

    def figures(self) -> dict[str, Any]:
        """Users, impressions and the arm's metrics (means over users; None without users)."""
        means = {m: float(self.values(m).mean()) if self.users else None for m in METRICS}
        return {"users": self.users, "impressions": self.impressions, **means}


def arm_sample(user_codes: np.ndarray, best_rank: np.ndarray) -> ArmSample:
    """Per-user figures of one arm from its impressions.

    `user_codes`: each impression's user as an integer code (any codes; unused ones are skipped);
    `best_rank`: each impression's best answered rank, 0-based (-1: not answered).
    """
    codes = np.asarray(user_codes, dtype=np.int64)
    best = np.asarray(best_rank, dtype=np.int64)
    if len(codes) == 0:
        return ArmSample(np.zeros(0), np.zeros(0), 0)
    hit = best >= 0
    reciprocal = np.where(hit, 1.0 / (1 + np.maximum(best, 0)), 0.0)
    size = int(codes.max()) + 1
    responses = np.bincount(codes, minlength=size)
    seen = responses > 0
    hits = np.bincount(codes, weights=hit.astype(np.float64), minlength=size)[seen]
    rr = np.bincount(codes, weights=reciprocal, minlength=size)[seen]
    return ArmSample(hits / responses[seen], rr / responses[seen], len(codes))


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` resamples (with replacement) of the rows of `values` (users x metrics).

    Vectorised in chunks of at most CHUNK_VALUES gathered values, so 10^5 users and 2000 resamples
    stay within a few tens of MB.
    """
    n = values.shape[0]
    out = np.empty((resamples, values.shape[1]))
    rows = max(1, CHUNK_VALUES // max(n, 1))
    index_type = np.int32 if n < 2**31 else np.int64
    for start in range(0, resamples, rows):
        m = min(rows, resamples - start)
        idx = rng.integers(0, n, size=(m, n), dtype=index_type)
        for k in range(values.shape[1]):
            out[start : start + m, k] = values[:, k][idx].mean(axis=1)
    return out


@dataclass(frozen=True)
class Interval:
    """A difference candidate - production and its interval at a confidence."""

    estimate: float
    low: float
    high: float
    confidence: float

    def to_dict(self) -> dict[str, float]:
        """The report's form."""
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence}

    def __str__(self) -> str:
        return f"{self.estimate:+.4f} ({100 * self.confidence:.2f}% interval {self.low:+.4f} to {self.high:+.4f})"


@dataclass(frozen=True)
class Comparison:
    """Both arms and the difference of each metric, at the reported and at the deciding confidence."""

    production: ArmSample
    candidate: ArmSample
    difference: dict[str, Interval]  # empty while an arm has no users
    decision: dict[str, Interval]

    def to_report(self) -> dict[str, Any]:
        """The report's "arms", "difference" and "decision_interval" (without versions)."""
        return {
            "arms": {"production": self.production.figures(), "candidate": self.candidate.figures()},
            "difference": {m: self.difference[m].to_dict() for m in self.difference} or None,
            "decision_interval": {
                m: {k: v for k, v in self.decision[m].to_dict().items() if k != "estimate"}
                for m in self.decision
            }
            or None,
        }


def decision_confidence(rule: ExperimentRule) -> float:
    """The Bonferroni-adjusted confidence of each daily look: 1 - (1 - confidence) / max_days."""
    return 1.0 - (1.0 - rule.confidence) / rule.max_days


def compare(
    production: ArmSample, candidate: ArmSample, rule: ExperimentRule, *, resamples: int, seed: int
) -> Comparison:
    """Bootstrap the difference of every metric, resampling users within each arm independently."""
    if production.users == 0 or candidate.users == 0:
        return Comparison(production, candidate, {}, {})
    rng = np.random.default_rng(seed)
    stack = {a: np.column_stack([s.values(m) for m in METRICS]) for a, s in
             (("production", production), ("candidate", candidate))}  # fmt: skip
    diffs = bootstrap_means(stack["candidate"], resamples, rng) - bootstrap_means(
        stack["production"], resamples, rng
    )
    observed = stack["candidate"].mean(axis=0) - stack["production"].mean(axis=0)
    out: dict[str, dict[str, Interval]] = {"report": {}, "decide": {}}
    for which, confidence in (("report", rule.confidence), ("decide", decision_confidence(rule))):
        tail = (1.0 - confidence) / 2
        for k, metric in enumerate(METRICS):
            low, high = np.quantile(diffs[:, k], [tail, 1.0 - tail])
            out[which][metric] = Interval(float(observed[k]), float(low), float(high), confidence)
    return Comparison(production, candidate, out["report"], out["decide"])


@dataclass(frozen=True)
class Decision:
    """What to do with the experiment, the registry outcome that does it, and why (with the figures)."""

    verdict: Verdict
    outcome: Outcome | None
    reason: str


def decide(
    comparison: Comparison, rule: ExperimentRule, *, guards_ok: bool, guard_detail: str, days_running: int
) -> Decision:
    """Apply the rule of the module docstring to one day's comparison (pure)."""
    if not guards_ok:
        return Decision("rollback", "rolled_back", f"guard failed: {guard_detail}")
    users = (comparison.production.users, comparison.candidate.users)
    counted = f"{users[1]} candidate and {users[0]} production users"
    metrics = (rule.metric, rule.guard_metric)
    if min(users) >= rule.min_users and comparison.decision:
        worse = [m for m in metrics if comparison.decision[m].high < 0]
        if worse:
            why = "; ".join(f"{LABELS.get(m, m)} {comparison.decision[m]} is below 0" for m in worse)
            return Decision("rollback", "rolled_back", f"candidate worse: {why}; {counted}")
        if all(comparison.decision[m].low > -rule.delta for m in metrics):
            why = " and ".join(f"{LABELS.get(m, m)} {comparison.decision[m]}" for m in metrics)
            return Decision(
                "promote", "promoted", f"candidate no worse than -{rule.delta:g}: {why}; {counted}"
            )
    if min(users) < rule.min_users:
        status = f"{counted}, {rule.min_users} needed per arm"
    else:
        shown = " and ".join(f"{LABELS.get(m, m)} {comparison.decision[m]}" for m in metrics)
        status = f"{shown}: not both above -{rule.delta:g}, neither below 0; {counted}"
    if days_running >= rule.max_days:
        return Decision("rollback", "inconclusive", f"no decision after {days_running} days: {status}")
    return Decision("continue", None, f"day {days_running} of at most {rule.max_days}: {status}")


def users_needed(sd: float, effect: float, rule: ExperimentRule, share: float) -> int:
    """Rough users (both arms) for the decision interval's lower bound to clear -delta at `effect`.

    A normal approximation of the bootstrap: the half-width z * sd * sqrt(1/n_c + 1/n_p) must be
    below effect + delta. For the notes and the simulator's sizing, not for deciding.
    """
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - decision_confidence(rule)) / 2)
    margin = effect + rule.delta
    if margin <= 0:
        return -1
    # 1/(share n) + 1/((1-share) n) = 1 / (n share (1-share))
    return math.ceil((z * sd / margin) ** 2 / (share * (1 - share)))
