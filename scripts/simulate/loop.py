"""Drive the real stack the way its users would, for a few days, and watch the loop close.

Each simulated user is a bundled MovieLens user. Their training movies (never their validation or
test targets, so the offline evaluation stays clean) are cut in two: the first half is what they
have seen, the second half their real future. On the first day each user marks what they have seen
(`watched`); then, every day, they ask `/recommend` for ten movies given what they like, and like each
shown movie that is in their future (with the response's request id and the card's position), which
also joins what they like for the next day. After each day's traffic the day's pipeline runs
(`scripts/pipeline.sh`): collect_feedback, a recommender trained on the feedback when there is new
feedback, evaluate_online, and a reload of the API when a version was promoted.

The API stamps events with the real time, so every simulated day lands in today's partition: each
day's pipeline run reruns today's logical date, and collect_feedback reads all that was posted so far
(a rerun overwrites its curated partition). The per-day figures below come from each day's own request
ids, with the same join the DAG's evaluate_online task uses.

    ./scripts/simulate.sh [--users 50] [--days 3] [--seed 0] [--max-epochs N] [--api URL]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from scripts.harness.api import wait_flushed
from scripts.harness.processes import ROOT
from scripts.simulate.shared import MIN_TRAIN, User, draw_users, post, run_pipeline, start_api

log = logging.getLogger("simulate")


def _day_traffic(
    http: httpx.Client, users: list[User], liked: dict[str, list[int]], first: bool
) -> list[str]:
    """One day of every user's visits; returns the request ids of the day's recommendations."""
    request_ids = []
    for user_id, seen, future in users:
        if first:
            events = [{"user_id": user_id, "tmdb_id": t, "kind": "watched"} for t in seen]
            for i in range(0, len(events), 500):
                post(http, "/feedback", {"events": events[i : i + 500]})
        rec = post(http, "/recommend", {"liked": liked[user_id][-50:], "k": 10, "user_id": user_id})
        request_ids.append(rec["request_id"])
        hits = [
            {"user_id": user_id, "tmdb_id": m["tmdb_id"], "kind": "like", "request_id": rec["request_id"],
             "position": pos}
            for pos, m in enumerate(rec["items"], start=1) if m["tmdb_id"] in future
        ]  # fmt: skip
        if hits:
            post(http, "/feedback", {"events": hits})
            liked[user_id] += [h["tmdb_id"] for h in hits]
    return request_ids


def _day_metrics(store: Any, day: str, request_ids: list[str]) -> list[dict[str, Any]]:
    """The online metrics of one simulated day's responses, per recommender version (evaluate_online's join)."""
    from services.core import events
    from services.train.feedback.impressions import usable_impressions
    from services.train.feedback.online_eval import version_metrics

    wanted = set(request_ids)
    impressions, _ = usable_impressions(
        [r for r in events.read_day(store, "impressions", day) if r.get("request_id") in wanted]
    )
    feedback = [r for r in events.read_day(store, "feedback", day) if r.get("request_id") in wanted]
    return version_metrics(impressions, feedback)


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the API if needed, run the days, print what happened."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.simulate.loop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
    parser.add_argument("--days", type=int, default=3, help="simulated days (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="which users are drawn (default 0)")
    parser.add_argument(
        "--max-epochs", type=int, help="cap the recommender's epochs (default: train to early stop)"
    )
    parser.add_argument("--api", help="a running API to drive; default: start one (with its own spool)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from services.core.registry import Registry
    from services.core.settings import get_settings
    from services.core.storage import ObjectStore

    store = ObjectStore.from_settings(get_settings())
    registry = Registry(store)
    day = datetime.now(UTC).date().isoformat()
    var = Path(os.environ.get("VAR_DIR", ROOT / "var"))
    (var / "logs").mkdir(parents=True, exist_ok=True)
    token = os.environ.get("ADMIN_TOKEN") or secrets.token_hex(16)
    env = {**os.environ, "ADMIN_TOKEN": token}
    if args.max_epochs:
        env["RECOMMENDER_MAX_EPOCHS"] = str(args.max_epochs)
    if registry.production_version("rating") is None:
        log.info("==> no production model yet: running the pipeline once first")
        if run_pipeline(day, {**env, "SERVE_URL": ""}, var / "logs" / "simulate-pipeline-0.log"):
            sys.exit(f"the first pipeline run failed: see {var / 'logs' / 'simulate-pipeline-0.log'}")
    users = draw_users(args.users, args.seed)
    log.info(
        "==> %d simulated users (MovieLens users with >= %d training movies, seed %d)",
        len(users),
        MIN_TRAIN,
        args.seed,
    )
    liked = {u: list(seen) for u, seen, _ in users}
    rows = []
    with ExitStack() as stack:
        url = args.api
        if url is None:
            url = start_api(stack, env, var, var / "logs" / "simulate-api.log", 120)
        env["SERVE_URL"] = url  # the pipeline's last task reloads this API when it promotes a version
        with httpx.Client(base_url=url, timeout=30) as http:
            for n in range(1, args.days + 1):
                served = http.get("/ready").json().get("recommender_version")
                log.info("==> day %d: %d users visit (recommender %s)", n, len(users), served)
                request_ids = _day_traffic(http, users, liked, first=n == 1)
                wait_flushed(url)  # the API's spool is in S3 before the pipeline reads it
                metrics = _day_metrics(store, day, request_ids)
                for m in metrics:
                    log.info("    online: version %s, %d responses, hit rate %.3f, MRR %.3f, coverage %.3f",
                             m["version"], m["responses"], m["hit_rate"], m["mrr"], m["coverage"])  # fmt: skip
                code = run_pipeline(day, env, var / "logs" / f"simulate-pipeline-{n}.log")
                if code:
                    sys.exit(
                        f"day {n}: the pipeline failed: see {var / 'logs' / f'simulate-pipeline-{n}.log'}"
                    )
                decision = store.get_json(f"runs/dt={day}/recommender_decision.json")
                notes = registry.manifest("recommender", decision["version"]).notes.get("data", {})
                verdict = "skipped (no new feedback)" if decision.get("skipped") else (
                    "PROMOTED" if decision["promoted"] else "published, not promoted")  # fmt: skip
                log.info("    pipeline: recommender %s %s; trained on %s feedback interactions of %s users",
                         decision["version"], verdict, notes.get("feedback_interactions", 0),
                         notes.get("feedback_users", 0))  # fmt: skip
                log.info("    %s", decision["reason"])
                rows += [(n, m, decision, verdict, notes) for m in metrics]
    print()
    print(f"Simulation: {len(users)} users, {args.days} days, seed {args.seed}, logical date {day}")
    print(
        "| day | served by | responses | hit rate | MRR | coverage | fallback | trained next | verdict | feedback interactions (users) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|---|---|")
    for n, m, d, verdict, notes in rows:
        print(f"| {n} | {m['version']} | {m['responses']} | {m['hit_rate']:.3f} | {m['mrr']:.3f} | {m['coverage']:.3f} "
              f"| {m['fallback_share']:.2f} | {d['version']} | {verdict} | "
              f"{notes.get('feedback_interactions', 0)} ({notes.get('feedback_users', 0)}) |")  # fmt: skip
    print(f"\nThe DAG's own report for the day: reports/online/dt={day}/recommender.json; "
          "the UI's Model page plots it.")  # fmt: skip
    print(
        json.dumps(store.get_json(f"reports/online/dt={day}/recommender.json")["versions"], indent=1)[:2000]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
