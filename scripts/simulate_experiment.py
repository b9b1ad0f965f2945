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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_feedback import _flushed  # noqa: E402 - after the path is set
from scripts.bench_serve_servers import free_port, process, wait  # noqa: E402
from scripts.simulate import MIN_TRAIN, _pipeline, _post, _users  # noqa: E402

log = logging.getLogger("simulate")
MODEL = "recommender"
SIMULATION_NOTE = "popularity baseline published by simulate.sh --candidate"


def popularity_version(ctx: Any) -> str:
    """The popularity baseline on the snapshot, published unpromoted (reused when already published)."""
    from services.core.registry import RegistryError
    from services.train.recommender.baselines import fit_popularity
    from services.train.recommender.catalog_growth import catalog_bytes
    from services.train.recommender.data import load_snapshot_data
    from services.train.recommender.item_features import catalog_movies
    from services.train.recommender.metrics import evaluate_recommender, prefixed

    data = load_snapshot_data(ctx.settings.snapshot_dir)
    for version in reversed(ctx.registry.versions(MODEL)):
        try:
            manifest = ctx.registry.manifest(MODEL, version)
        except RegistryError:
            continue
        if (
            manifest.notes.get("simulation") == SIMULATION_NOTE
            and manifest.data_fingerprint == data.splits.fingerprint
        ):
            return version
    rec = fit_popularity(data.splits)
    metrics = {**prefixed(evaluate_recommender(rec, data.splits, "valid"), "valid"),
               **prefixed(evaluate_recommender(rec, data.splits, "test"), "test")}  # fmt: skip
    files = {**rec.save(), "catalog.json": catalog_bytes(rec, catalog_movies(data.records().values()))}
    meta = {"algorithm": "popularity", "metrics": metrics, "data_fingerprint": data.splits.fingerprint,
            "notes": {"simulation": SIMULATION_NOTE}}  # fmt: skip
    return ctx.registry.publish(MODEL, files, meta, promote=False).version


def trained_version(registry: Any, popularity: str) -> str:
    """The trained recommender: production, or the newest published version before it when production is
    the simulation's popularity baseline (a --candidate better run that did not finish)."""
    production = registry.production_version(MODEL)
    if production != popularity:
        return production
    for version in reversed(registry.versions(MODEL)):
        if registry.manifest(MODEL, version).notes.get("simulation") != SIMULATION_NOTE:
            return version
    sys.exit("no trained recommender is published: run ./scripts/pipeline.sh first")


def arrange(ctx: Any, candidate: str, share: float) -> tuple[Any, str, str]:
    """End a running experiment, put the right version in production, start the experiment."""
    from services.core import experiments

    running = experiments.read_candidates(ctx.registry, MODEL).running
    if running is not None:
        log.info(
            "==> ending the running experiment %s (aborted) to start the simulated one", running.experiment_id
        )
        experiments.end(ctx.registry, MODEL, "aborted", "simulation: replaced by a simulated experiment",
                        experiment_id=running.experiment_id)  # fmt: skip
    popularity = popularity_version(ctx)
    trained = trained_version(ctx.registry, popularity)
    production, version = (trained, popularity) if candidate == "worse" else (popularity, trained)
    if ctx.registry.production_version(MODEL) != production:
        reason = (
            "simulation: a weak production to beat"
            if candidate == "better"
            else "simulation: back to the trained one"
        )
        ctx.registry.promote(MODEL, production, reason=reason)
    rule = experiments.rule_from_settings(ctx.settings)
    experiment = experiments.start(ctx.registry, MODEL, version, share=share, rule=rule, started_by="simulate",
                                   reason=f"simulation: a {candidate} candidate")  # fmt: skip
    log.info("==> experiment %s: candidate %s (%s) for %.0f%% of users, against production %s (%s)",
             experiment.experiment_id, version, _algorithm(ctx, version), 100 * share, production,
             _algorithm(ctx, production))  # fmt: skip
    log.info("    rule: promote when both lower bounds > -%g with >= %d users per arm, roll back when an upper "
             "bound < 0; at most %d days", rule.delta, rule.min_users, rule.max_days)  # fmt: skip
    return experiment, production, version


def _algorithm(ctx: Any, version: str) -> str:
    return ctx.registry.manifest(MODEL, version).algorithm or "unknown"


def visit(http: httpx.Client, user: tuple[str, list[int], set[int]], liked: dict[str, list[int]]) -> str:
    """One visit: recommendations for the user, likes on the shown movies in their future; returns the arm."""
    user_id, _, future = user
    rec = _post(http, "/recommend", {"liked": liked[user_id][-50:], "k": 10, "user_id": user_id})
    hits = [{"user_id": user_id, "tmdb_id": m["tmdb_id"], "kind": "like", "request_id": rec["request_id"],
             "position": pos} for pos, m in enumerate(rec["items"], start=1) if m["tmdb_id"] in future]  # fmt: skip
    if hits:
        _post(http, "/feedback", {"events": hits})
        liked[user_id] += [h["tmdb_id"] for h in hits]
    return rec.get("arm", "production")


def _pts(d: dict[str, float] | None) -> str:
    if not d:
        return "n/a"
    return f"{100 * d['estimate']:+.1f} pts [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]" if "estimate" in d \
        else f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"  # fmt: skip


def print_day(report: dict[str, Any]) -> None:
    """The judge's figures of one simulated day, in a few lines."""
    arms = report["arms"]
    diff, decision = report.get("difference") or {}, report.get("decision_interval") or {}
    rate = {a: "n/a" if arms[a]["hit_rate"] is None else f"{arms[a]['hit_rate']:.3f}" for a in arms}
    log.info("    judged as data day %s (day %d): users production %d / candidate %d; hit rate %s / %s",
             report["date"], report["days_running"], arms["production"]["users"], arms["candidate"]["users"],
             rate["production"], rate["candidate"])  # fmt: skip
    log.info("    difference of hit rate %s (95%%), decision interval %s; MRR %s",
             _pts(diff.get("hit_rate")), _pts(decision.get("hit_rate")), _pts(diff.get("mrr")))  # fmt: skip
    log.info("    guards: %s", report["guards"].get("detail") or report["guards"].get("ok"))
    log.info("    verdict: %s (%s)", report["verdict"].upper(), report["reason"])


def main(argv: list[str] | None = None) -> int:
    """Parse options, arrange the arms, start or reload the API, run the days, print what decided it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
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
        if _pipeline(today, {**env, "SERVE_URL": ""}, var / "logs" / "simulate-experiment-pipeline.log"):
            sys.exit(f"the pipeline failed: see {var / 'logs' / 'simulate-experiment-pipeline.log'}")
    experiment, production, candidate = arrange(ctx, args.candidate, args.share)
    days = args.days or experiment.rule.max_days
    users = _users(args.users_per_day * days, args.seed)
    log.info("==> up to %d users (MovieLens users with >= %d training movies, seed %d), %d new a day; steps' "
             "log %s", len(users), MIN_TRAIN, args.seed, args.users_per_day, steps_log)  # fmt: skip
    with ExitStack() as stack:
        url = args.api
        if url is None:  # started after the experiment, so it serves both arms from its first request
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            api_log = var / "logs" / "simulate-experiment-api.log"
            api_env = {**env, "SERVE_PORT": str(port), "SPOOL_DIR": str(var / "spool-simulate"), "S3_EMBEDDED": "0"}  # fmt: skip
            log.info("==> starting the API on %s (log %s)", url, api_log)
            proc = stack.enter_context(process([str(ROOT / "scripts" / "serve.sh")], api_env, api_log))
            wait(f"{url}/ready", proc, api_log, time.monotonic(), 180)
        ctx.settings = ctx.settings.model_copy(update={"serve_url": url, "admin_token": SecretStr(token)})
        notify_serving(ctx, [])  # a running API is reloaded onto the experiment; ours already serves it
        with httpx.Client(base_url=url, timeout=30) as http:
            ready = http.get("/ready").json()
            log.info("    the API serves production %s and candidate %s", ready.get("recommender_version"),
                     ready.get("recommender_candidate_version"))  # fmt: skip
            report = run_days(ctx, http, url, experiment, users, args.users_per_day, days)
        notify_serving(ctx, [])
    return summary(ctx, args, report, production, candidate, time.monotonic() - started)


def run_days(ctx: Any, http: httpx.Client, url: str, experiment: Any, users: list, per_day: int,
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
        _flushed(url)
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


def summary(ctx: Any, args: argparse.Namespace, report: dict[str, Any] | None, production: str,
            candidate: str, seconds: float) -> int:  # fmt: skip
    """How it ended, the production pointer, and how many users it took."""
    pointer = ctx.registry.pointer(MODEL)
    print()
    if report is None:
        print("No day was judged.")
        return 1
    arms = report["arms"]
    outcome = report.get("outcome") or "still running"
    print(f"Candidate {candidate} ({args.candidate}) against production {production}: {outcome.upper()} "
          f"after {report['days_running']} simulated days, {seconds:.0f} s")  # fmt: skip
    print(f"  reason: {report['reason']}")
    print(f"  difference of hit rate (candidate - production): {_pts((report.get('difference') or {}).get('hit_rate'))}"
          f" 95% interval; decision interval {_pts((report.get('decision_interval') or {}).get('hit_rate'))}")  # fmt: skip
    needed = "the decision needed" if report.get("outcome") else "so far"
    print(f"  users {needed}: {arms['production']['users']} in production and {arms['candidate']['users']} "
          f"in the candidate arm ({arms['production']['users'] + arms['candidate']['users']} in all)")  # fmt: skip
    print(
        f"  production pointer: {pointer.version if pointer else None} ({pointer.reason if pointer else ''})"
    )
    if report.get("outcome") is None:
        print("  the experiment still runs: ./scripts/registry.sh rollback recommender ends it")
    elif args.candidate == "better" and pointer is not None and pointer.version == production:
        print(
            f"  production is still the popularity baseline: ./scripts/registry.sh promote recommender {candidate}"
        )
    print("  the UI's Model page shows it under Experiments (./scripts/serve.sh, then ./scripts/ui.sh)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
