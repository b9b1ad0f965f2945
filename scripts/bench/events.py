"""The offline event path at volume: curate and evaluate one busy day on a real S3.

Starts a throw-away SeaweedFS, writes N synthetic events for one day (impressions and the feedback
answering some of them, with retried duplicates across replicas) as gzipped JSON-lines batches under
M replicas, then runs `collect_feedback` and `evaluate_online` exactly as the pipeline does (with the
re-curation window) in a fresh child process, and prints their wall time and the child's peak RSS.
The ceiling is the day size at which either target (120 s, 3 GB) would be reached, extrapolated
linearly from the measured run.

    ./scripts/bench.sh events                       # 1,000,000 events over 4 replicas
    ./scripts/bench.sh events --events 5000000 --replicas 8
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scripts.bench.events_data import DAY, SHOWN, synthesize
from scripts.bench.record import write_record
from services.core import event_table, events
from services.core.embedded_s3 import EmbeddedS3, free_port_block
from services.core.settings import Settings
from services.core.storage import ObjectStore

ROOT = Path(__file__).resolve().parents[2]

log = logging.getLogger("bench_events")

TARGET_S, TARGET_GB = 120.0, 3.0


def upload(store: ObjectStore, stream: str, table: pa.Table, replicas: int, batch_rows: int) -> int:
    """Spread rows over replicas at random and upload each replica's rows, in time order, in batches."""
    rng = np.random.default_rng(len(stream))
    owner = rng.integers(0, replicas, table.num_rows)
    jobs = []
    for r in range(replicas):
        mine = table.take(pa.array(np.flatnonzero(owner == r))).sort_by("ts")
        epoch = secrets.token_hex(4)  # the names helper A's flusher writes; readers only list the prefix
        for first in range(0, mine.num_rows, batch_rows):
            key = f"{events.stream_prefix(stream, DAY)}api-{r}-{epoch}-{first:012d}.jsonl.gz"
            jobs.append((key, mine.slice(first, batch_rows)))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda job: store.put_bytes(job[0], event_table.encode_table_jsonl(job[1])), jobs))
    return len(jobs)


def measure(settings: Settings, window_days: int) -> dict[str, Any]:
    """Run the two pipeline steps on DAY; their times and peak RSS each (run in a fresh child process)."""
    from services.train.feedback.curate import collect_feedback
    from services.train.feedback.online_eval import evaluate_online
    from services.train.tracking import Tracker

    store = ObjectStore.from_settings(settings)
    base = _rss_mb()
    # ru_maxrss survives fork+exec: it starts at the parent's RSS, so it counts only once it grows past it.
    inherited = _maxrss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_mb())

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    fb = collect_feedback(store, DAY, window_days=window_days)
    t1, collect_mb = time.perf_counter(), peak[0]
    peak[0] = _rss_mb()
    online = evaluate_online(store, Tracker(settings), DAY, window_days=window_days)
    t2 = time.perf_counter()
    done.set()
    max_rss = _maxrss_mb() if _maxrss_mb() > inherited else 0.0
    return {
        "collect_s": t1 - t0, "evaluate_s": t2 - t1, "base_mb": base, "collect_mb": collect_mb,
        "evaluate_mb": peak[0], "peak_mb": max(collect_mb, peak[0], max_rss),
        "feedback": {k: fb[k] for k in ("events", "duplicates", "quarantined", "interactions")},
        "impressions": online["impressions"], "versions": online["versions"],
    }  # fmt: skip


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def _child(args: argparse.Namespace) -> int:
    settings = Settings(_env_file=None, wandb_mode="disabled", **json.loads(args.child))
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    print(json.dumps(measure(settings, args.window)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Start S3; per size, write the day and measure curation and evaluation in a child; print the ceiling."""
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--events", default="1000000", help="events in the day; several (1000000,5000000) "
                        "fit a line for the ceiling (default 1000000)")  # fmt: skip
    parser.add_argument("--replicas", type=int, default=4, help="API replicas writing batches (default 4)")
    parser.add_argument("--batch-rows", type=int, default=50_000, help="rows per batch (default 50,000)")
    parser.add_argument("--feedback-share", type=float, default=0.25, help="feedback share (default 0.25)")
    parser.add_argument(
        "--dup-share", type=float, default=0.02, help="rows retried to another replica (0.02)"
    )
    parser.add_argument(
        "--window", type=int, default=3, help="re-curation window, RECURATION_DAYS (default 3)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(f"events benchmark: one day of synthetic events ({1 - args.feedback_share:.0%} impressions of "
          f"{SHOWN} movies, {args.feedback_share:.0%} feedback, {args.dup_share:.0%} retried to another "
          f"replica) from {args.replicas} replicas in batches of {args.batch_rows:,}; "
          f"re-curation window {args.window} days; {os.cpu_count()} CPUs")  # fmt: skip
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        server = EmbeddedS3(Path(tmp) / "s3", free_port_block(), "bench" + secrets.token_hex(4),
                            secrets.token_hex(16), "bench-events")  # fmt: skip
        server.start(timeout_s=60)
        try:
            for size in (int(x) for x in args.events.split(",")):
                points.append(_one_size(args, server, size))
        finally:
            server.stop()
    figures = {
        "targets": {"seconds": TARGET_S, "gb": TARGET_GB},
        "sizes": points,
        "ceiling": _ceiling(points),
    }
    table = ["| events | batches | collect_feedback s | evaluate_online s | total s | peak MB | every event once "
             "| load average before |", "|---:|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    table += [f"| {p['events']:,} | {p['batches']} | {p['collect_s']:.1f} | {p['evaluate_s']:.1f} | {p['total_s']:.1f} "
              f"| {p['peak_mb']:.0f} | {'yes' if p['every_event_once'] else 'NO'} | {p['load_before']:.2f} |"
              for p in points]  # fmt: skip
    verdicts = [{"claim": f"curation keeps every event once, {p['events']:,} events", "target": "every unique "
                 "event once", "value": "yes" if p["every_event_once"] else "NO", "low": None, "high": None,
                 "verdict": "met" if p["every_event_once"] else "not met"} for p in points]  # fmt: skip
    write_record(
        "events", sys.argv[1:] if argv is None else argv, figures, verdicts, {"sizes": "\n".join(table)}
    )
    return 0


def _one_size(args: argparse.Namespace, server: EmbeddedS3, size: int) -> dict[str, Any]:
    s3 = {"s3_endpoint_url": server.endpoint, "s3_bucket": f"bench-events-{size}",
          "aws_access_key_id": server.access_key, "aws_secret_access_key": server.secret_key}  # fmt: skip
    store = ObjectStore.from_settings(Settings(_env_file=None, **s3))
    store.ensure_bucket()
    t0 = time.perf_counter()
    tables = synthesize(size, args.feedback_share, args.dup_share, args.seed)
    batches = sum(upload(store, s, t, args.replicas, args.batch_rows) for s, t in tables.items())
    rows = {s: t.num_rows for s, t in tables.items()}
    uniq = {s: pc.count_distinct(t["event_id"]).as_py() for s, t in tables.items()}
    del tables
    log.info("wrote %s rows in %d batches in %.0f s; measuring in a fresh process", rows, batches,
             time.perf_counter() - t0)  # fmt: skip
    load = os.getloadavg()[0]
    cmd = [sys.executable, "-m", "scripts.bench.events", "--child", json.dumps(s3),
           "--window", str(args.window)]  # fmt: skip
    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout)
    total_s, n = r["collect_s"] + r["evaluate_s"], sum(rows.values())
    ok = r["feedback"]["interactions"] == uniq["feedback"] and r["impressions"] == uniq["impressions"]
    print(
        f"\n{n:,} events ({rows['impressions']:,} impressions, {rows['feedback']:,} feedback) in {batches} "
        f"batches; load average {load:.2f} before the measured run"
    )
    print(f"- collect_feedback   {r['collect_s']:7.1f} s   peak {r['collect_mb']:6.0f} MB   {r['feedback']}")
    print(
        f"- evaluate_online    {r['evaluate_s']:7.1f} s   peak {r['evaluate_mb']:6.0f} MB   "
        f"{r['impressions']:,} impressions kept"
    )
    print(
        f"- total              {total_s:7.1f} s   peak {r['peak_mb']:6.0f} MB   (targets < {TARGET_S:.0f} s, "
        f"< {TARGET_GB:.0f} GB; {r['base_mb']:.0f} MB after imports)"
    )
    print(
        f"- every event once:  {'yes' if ok else 'NO'} (unique feedback {uniq['feedback']:,}, "
        f"unique impressions {uniq['impressions']:,})"
    )
    for v in r["versions"]:
        print(
            f"  {v['version']:>16} {v['pool']:>4}: {v['responses']:,} responses, hit_rate "
            f"{v['hit_rate']:.3f}, mrr {v['mrr']:.3f}, coverage {v['coverage']:.3f}"
        )
    return {"events": n, "rows": rows, "batches": batches, "load_before": load, **r, "total_s": total_s,
            "every_event_once": ok}  # fmt: skip


def _ceiling(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The day size at which time or memory reaches its target: a line through two or more sizes."""
    n = np.array([p["events"] for p in points], dtype=float)
    secs, mb = np.array([p["total_s"] for p in points]), np.array([p["peak_mb"] for p in points])
    if len(set(n)) >= 2:
        (ts, ti), (ms, mi) = np.polyfit(n, secs, 1), np.polyfit(n, mb, 1)
        how = f"a line through {len(n)} sizes"
    else:  # one size: proportional from zero, which overstates the per-event cost of a small run
        ts, ti, ms, mi = secs[0] / n[0], 0.0, mb[0] / n[0], 0.0
        how = "proportional to one size: pass --events 1000000,5000000 for a fitted line"
    by_time = (TARGET_S - ti) / ts if ts > 0 else float("inf")
    by_memory = (TARGET_GB * 1024 - mi) / ms if ms > 0 else float("inf")
    bound = "time" if by_time < by_memory else "memory"
    print(
        f"\nceiling: about {min(by_time, by_memory):,.0f} events/day on this machine, {bound}-bound "
        f"({by_time:,.0f} by the {TARGET_S:.0f} s target, {by_memory:,.0f} by {TARGET_GB:.0f} GB; {how})"
    )
    return {"events_per_day": min(by_time, by_memory), "bound": bound, "by_time": by_time, "by_memory": by_memory,
            "how": how}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
