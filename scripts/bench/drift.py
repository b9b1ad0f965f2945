"""The cost of the daily drift check for a busy day: time and peak memory of `monitor` on N logged predictions.

Starts a throw-away SeaweedFS, publishes a production rating model with its training features (the
snapshot's labelled movies, split at random: tests/drift_volume_data.py), and uploads one day of N
/predict log records in the serving host's format, as the flusher does (5,000-row gzipped JSON-lines
batches from two replicas). Then, each in a fresh process so its peak RSS is its own:

  read     sample_predictions alone: stream the day's batches, keep a DRIFT_SAMPLE_ROWS-row sample
  monitor  the whole task: training reference, the sample, both Evidently reports, summary.json

    .venv/bin/python -m scripts.bench.drift [--rows 1000000] [--shift] [--sample-rows 5000]
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
import time
from pathlib import Path

from scripts.bench.record import write_record

ROOT = Path(__file__).resolve().parents[2]

log = logging.getLogger("bench_drift")
DAY = "2026-12-02"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(mode: str) -> dict[str, object]:
    """Run one step in this (fresh) process against the S3 named by the environment; its figures.

    Wall seconds depend on what else the machine runs; CPU seconds (this process, all threads) less so.
    """
    from services.core.settings import Settings
    from services.train.context import Context
    from services.train.monitoring.drift import DRIFT_FEATURES
    from services.train.monitoring.monitor import monitor
    from services.train.monitoring.predictions_log import sample_predictions
    from services.train.rating.production import load_production

    settings = Settings(_env_file=None, wandb_mode="disabled")
    ctx = Context.from_settings(settings)
    prod = load_production(ctx)
    assert prod is not None, "no production model in the bench bucket"
    import evidently  # noqa: F401 - imported up front, so the baseline counts what every run loads

    baseline, cpu = _rss_now_mb(), _cpu_s()
    start = time.perf_counter()
    if mode == "read":
        names = [n for n in DRIFT_FEATURES if n in prod.manifest.features]  # as monitor reads them
        sample = sample_predictions(ctx.store, DAY, names, settings.drift_sample_rows)
        extra: dict[str, object] = {
            "rows": sample.rows,
            "sampled": len(sample.frame),
            "objects": sample.objects,
        }
    else:
        monitor(ctx, DAY)
        requests = ctx.store.get_json(f"reports/drift/dt={DAY}/summary.json")["comparisons"]["requests"]
        extra = {"rows": requests.get("rows_day"), "sampled": requests.get("rows_current"),
                 "drifted": requests.get("drifted"), "share": requests.get("share")}  # fmt: skip
    return {"mode": mode, "seconds": round(time.perf_counter() - start, 2), "cpu_s": round(_cpu_s() - cpu, 2),
            "baseline_rss_mb": round(baseline),
            "peak_rss_mb": round(_peak_rss_mb()), **extra}  # fmt: skip


def main() -> None:
    """Set up the day, then measure each step in a child process and print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.drift", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="logged predictions in the day")
    parser.add_argument("--shift", action="store_true", help="the requests' population has shifted")
    parser.add_argument("--sample-rows", type=int, default=5000, help="DRIFT_SAMPLE_ROWS for the run")
    parser.add_argument("--child", choices=("read", "monitor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from services.core.embedded_s3 import EmbeddedS3, free_port_block
    from services.core.settings import Settings
    from services.core.storage import ObjectStore
    from tests.drift_volume_data import log_lines, publish_production, write_day

    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        s3 = EmbeddedS3(Path(tmp) / "s3", free_port_block(), "bench" + secrets.token_hex(4), secrets.token_hex(16),
                        "bench")  # fmt: skip
        s3.start(timeout_s=60)
        try:
            env = {**os.environ, "S3_EMBEDDED": "0", "S3_ENDPOINT_URL": s3.endpoint, "S3_BUCKET": s3.bucket,
                   "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                   "DRIFT_SAMPLE_ROWS": str(args.sample_rows), "WANDB_MODE": "disabled",
                   "MODEL_CACHE_DIR": str(Path(tmp) / "cache")}  # fmt: skip
            settings = Settings(_env_file=None, s3_endpoint_url=s3.endpoint, s3_bucket=s3.bucket,
                                aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key)  # fmt: skip
            store = ObjectStore.from_settings(settings)
            store.ensure_bucket()
            version = publish_production(store)
            start = time.perf_counter()
            objects = write_day(store, DAY, log_lines(version, shift=args.shift), args.rows)
            size = sum(o.size for o in store.list(f"events/predictions/dt={DAY}/"))
            upload_s = time.perf_counter() - start
            log.info("uploaded %d logged predictions in %d batches (%.0f MB gzipped) in %.1f s", args.rows,
                     objects, size / 1e6, upload_s)  # fmt: skip
            results = []
            for mode in ("read", "monitor"):
                out = subprocess.run([sys.executable, "-m", "scripts.bench.drift", "--child", mode], env=env,
                                     check=True, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            s3.stop()
    print(f"\nDrift check on one day of {args.rows:,} logged predictions ({'shifted' if args.shift else 'unshifted'},"
          f" DRIFT_SAMPLE_ROWS={args.sample_rows}), {os.cpu_count()} cores")  # fmt: skip
    print(
        f"{'step':<10}{'wall s':>8}{'CPU s':>8}{'peak RSS MB':>13}{'RSS before MB':>15}  rows read -> compared"
    )
    table = [
        "| step | wall s | CPU s | peak RSS MB | RSS before MB | rows read -> compared |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        print(f"{r['mode']:<10}{r['seconds']:>8}{r['cpu_s']:>8}{r['peak_rss_mb']:>13}{r['baseline_rss_mb']:>15}"
              f"  {r['rows']:,} -> {r['sampled']:,}")  # fmt: skip
        table.append(f"| {r['mode']} | {r['seconds']} | {r['cpu_s']} | {r['peak_rss_mb']} | {r['baseline_rss_mb']} "
                     f"| {r['rows']:,} -> {r['sampled']:,} |")  # fmt: skip
    verdict = results[-1]
    print(f"requests drift: share {verdict['share']}, drifted {verdict['drifted']}")
    figures = {"rows": args.rows, "shift": args.shift, "sample_rows": args.sample_rows, "batches": objects,
               "gzipped_mb": round(size / 1e6), "upload_s": round(upload_s, 1),
               "steps": {r["mode"]: r for r in results}}  # fmt: skip
    write_record("drift", sys.argv[1:], figures, [], {"steps": "\n".join(table)})


if __name__ == "__main__":
    main()
