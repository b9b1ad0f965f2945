"""An online experiment on the real stack: a candidate recommender serves a share of simulated users
until what they did decides it, promote or roll back.

  --candidate worse   production is the trained recommender; the candidate is the popularity baseline
                      (published for the occasion, unpromoted). It should be rolled back.
  --candidate better  production becomes the popularity baseline (promoted: "a weak production to
                      beat"); the candidate is the trained recommender that was production. It should be
                      promoted, which puts the trained recommender back in production.

The experiment is started with services.core.experiments.start (started_by "simulate") and the rule of
the settings (EXPERIMENT_DELTA, EXPERIMENT_MIN_USERS, EXPERIMENT_MAX_DAYS). The share defaults to 0.5,
not the pipeline's 0.2: the bundled MovieLens has 652 users long enough to simulate, and 200 users in
the candidate arm at 0.2 would take 1,000. Each simulated day new users arrive (--users-per-day) and
those of earlier days come back: each asks /recommend with their user id (the API puts them in an arm
by hash(experiment, user)) and likes the shown movies that are in their real future (the second half
of their MovieLens history, with the response's request id), so they prefer what the better model
ranks. Then the API's spool is flushed, the day's feedback curated (feedback.steps.collect_feedback) and the
experiment judged by judge_experiment, the very function of the DAG's task, guards included (the
API's /metrics). It stops at the first promote or rollback and reloads the API.

Days: the API stamps events with the real time, so every simulated day's events land in today's
partition. Simulated day k is judged as data day today + k - 1, and the judge reads the experiment's
impressions of every day from its start: each day's judgement sees all the traffic so far, as a real
day's sees every earlier day's. Its reports go to reports/experiments/dt=<that day>/recommender.json,
which the UI's Model page charts. Logs (the API's, the pipeline's, the steps') go to var/logs/.

    ./scripts/simulate.sh --candidate worse|better [--users-per-day 150] [--days N] [--share 0.5]
                          [--seed 0] [--max-epochs N] [--api URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from scripts.harness.api import wait_flushed
from scripts.harness.processes import ROOT
from scripts.simulate.arms import MODEL, arrange
from scripts.simulate.experiment_report import print_day, summary
from scripts.simulate.shared import MIN_TRAIN, User, draw_users, post, run_pipeline, start_api

log = logging.getLogger("simulate")


def visit(http: httpx.Client, user: User, liked: dict[str, list[int]]) -> str:
    """One visit: recommendations for the user, likes on the shown movies in their future; returns the arm."""
    user_id, _, future = user
    rec = post(http, "/recommend", {"liked": liked[user_id][-50:], "k": 10, "user_id": user_id})
    hits = [{"user_id": user_id, "tmdb_id": m["tmdb_id"], "kind": "like", "request_id": rec["request_id"],
             "position": pos} for pos, m in enumerate(rec["items"], start=1) if m["tmdb_id"] in future]  # fmt: skip
    if hits:
        post(http, "/feedback", {"events": hits})
        liked[user_id] += [h["tmdb_id"] for h in hits]
    return rec.get("arm", "production")


def main(argv: list[str] | None = None) -> int:
    """Parse options, arrange the arms, start or reload the API, run the days, print what decided it."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.simulate.experiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--candidate", choices=("better", "worse"), required=True)
    parser.add_argument("--users-per-day", type=int, default=150, help="new users each day (default 150)")
    parser.add_argument("--days", type=int, help="simulated days at most (default EXPERIMENT_MAX_DAYS)")
    parser.add_argument("--share", type=float, default=0.5, help="users who get the candidate (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="which users are drawn (default 0)")
    parser.add_argument("--max-epochs", type=int, help="cap the recommender's epochs if the pipeline must run")  # fmt: skip
    parser.add_argument("--api", help="a running API to drive (reloaded; ADMIN_TOKEN); default: start one")
    args = parser.parse_args(argv)
    started = time.monotonic()
    var = Path(os.environ.get("VAR_DIR", ROOT / "var"))
    (var / "logs").mkdir(parents=True, exist_ok=True)
    steps_log = var / "logs" / "simulate-experiment.log"
    # The steps' own logs to a file; this script's progress lines to the terminal as well.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=[logging.FileHandler(steps_log)])  # fmt: skip
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(out)
    from pydantic import SecretStr

    from services.core.settings import get_settings
    from services.train.context import Context
    from services.train.notify import notify_serving

    token = os.environ.get("ADMIN_TOKEN") or secrets.token_hex(16)
    env = {**os.environ, "ADMIN_TOKEN": token}
    if args.max_epochs:
        env["RECOMMENDER_MAX_EPOCHS"] = str(args.max_epochs)
    ctx = Context.from_settings(get_settings())
    if args.candidate == "better" and "EXPERIMENT_MAX_LATENCY_RATIO" not in os.environ:
        # Production is then the popularity baseline, a lookup (~0.1 ms a request): a learned model is many
        # times slower by design, which is no regression. The error guard stays on.
        ctx.settings = ctx.settings.model_copy(update={"experiment_max_latency_ratio": 1e9})
        log.info("==> latency guard off: production is the popularity baseline, which any learned model is "
                 "many times slower than (EXPERIMENT_MAX_LATENCY_RATIO sets it); the error guard stays on")  # fmt: skip
    today = datetime.now(UTC).date().isoformat()
    if _production(ctx, "rating") is None or _production(ctx, MODEL) is None:
        log.info("==> no production model yet: running the pipeline once first (log var/logs/)")
        if run_pipeline(today, {**env, "SERVE_URL": ""}, var / "logs" / "simulate-experiment-pipeline.log"):
            sys.exit(f"the pipeline failed: see {var / 'logs' / 'simulate-experiment-pipeline.log'}")
    experiment, production, candidate = arrange(ctx, args.candidate, args.share)
    days = args.days or experiment.rule.max_days
    users = draw_users(args.users_per_day * days, args.seed)
    log.info("==> up to %d users (MovieLens users with >= %d training movies, seed %d), %d new a day; steps' "
             "log %s", len(users), MIN_TRAIN, args.seed, args.users_per_day, steps_log)  # fmt: skip
    with ExitStack() as stack:
        url = args.api
        if url is None:  # started after the experiment, so it serves both arms from its first request
            url = start_api(stack, env, var, var / "logs" / "simulate-experiment-api.log", 180)
        ctx.settings = ctx.settings.model_copy(update={"serve_url": url, "admin_token": SecretStr(token)})
        notify_serving(ctx, [])  # a running API is reloaded onto the experiment; ours already serves it
        with httpx.Client(base_url=url, timeout=30) as http:
            ready = http.get("/ready").json()
            log.info("    the API serves production %s and candidate %s", ready.get("recommender_version"),
                     ready.get("recommender_candidate_version"))  # fmt: skip
            report = run_days(ctx, http, url, experiment, users, args.users_per_day, days)
        notify_serving(ctx, [])
    return summary(ctx, args, report, production, candidate, time.monotonic() - started)


def run_days(ctx: Any, http: httpx.Client, url: str, experiment: Any, users: list[User], per_day: int,
             days: int) -> dict[str, Any] | None:  # fmt: skip
    """Each day: visits, flush, curation, judgement; the last day's report (None if none was judged)."""
    from services.train.experiments.steps import judge_experiment
    from services.train.feedback.steps import collect_feedback

    liked = {u: list(seen) for u, seen, _ in users}
    start = date.fromisoformat(experiment.started_at[:10])
    report = None
    for n in range(1, days + 1):
        visitors = users[: n * per_day]
        log.info("==> day %d: %d users visit (%d new)", n, len(visitors),
                 len(visitors) - min(len(users), (n - 1) * per_day))  # fmt: skip
        arms = [visit(http, user, liked) for user in visitors]
        log.info("    %d to production, %d to the candidate; flushing the spool, curating, judging",
                 arms.count("production"), arms.count("candidate"))  # fmt: skip
        wait_flushed(url)
        for day in _real_days(start):
            collect_feedback(ctx, day)
        result = judge_experiment(ctx, (start + timedelta(days=n - 1)).isoformat())
        if "report" not in result:  # nothing judged (the experiment ended meanwhile): say why
            log.info("    not judged: %s", result.get("reason") or result)
            break
        report = ctx.store.get_json(result["report"])
        print_day(report)
        if result.get("outcome"):
            break
    return report


def _production(ctx: Any, model: str, timeout_s: float = 60.0) -> str | None:
    """The production version, waiting out a just-started S3 that lists buckets before it serves reads."""
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ctx.registry.production_version(model)
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _real_days(start: date) -> list[str]:
    """The real dates events were stamped with since the experiment started (one, unless past midnight)."""
    now = datetime.now(UTC).date()
    return [(start + timedelta(days=i)).isoformat() for i in range((now - start).days + 1)]


if __name__ == "__main__":
    raise SystemExit(main())
