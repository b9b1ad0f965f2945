"""`simulate.sh --candidate worse|better` on the real S3 and a real API process: the popularity baseline
loses to a trained recommender and is rolled back; made production, it is beaten and the trained one
promoted back. Each run's per-day judgement is the DAG's judge_experiment on what the simulated users did.

The trained recommender is item-kNN published as the pipeline would (seconds instead of a SASRec run):
what matters here is a recommender that ranks the users' real futures better than popularity does.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from services.core import experiments
from services.core.embedded_s3 import EmbeddedS3
from services.core.registry import Registry
from services.core.settings import Settings
from services.train.recommender.baselines import fit_item_knn
from services.train.recommender.catalog_growth import catalog_bytes
from services.train.recommender.data import load_snapshot_data
from services.train.recommender.item_features import catalog_movies
from tests.serve_fixtures import publish_rating

ROOT = Path(__file__).resolve().parents[2]
MIN_USERS = 60  # per arm: small enough for a few simulated days of 120 new users
INTERVAL = re.compile(
    r"difference of hit rate \(candidate - production\): ([+-]\d+\.\d) pts \[([+-]\d+\.\d), ([+-]\d+\.\d)\] "
    r"95% interval; decision interval \[([+-]\d+\.\d), ([+-]\d+\.\d)\]"
)


def publish_trained(registry: Registry, settings: Settings) -> str:
    """Item-kNN on the bundled snapshot, in the runtime's format with its catalog, promoted."""
    data = load_snapshot_data(settings.snapshot_dir)
    rec = fit_item_knn(data.splits)
    files = {**rec.save(), "catalog.json": catalog_bytes(rec, catalog_movies(data.records().values()))}
    meta = {"algorithm": "item_knn", "data_fingerprint": data.splits.fingerprint}
    return registry.publish("recommender", files, meta, promote=True, reason="test: trained").version


def simulate(candidate: str, env: dict[str, str]) -> str:
    """Run the script as a user would; its stdout (fails with both streams when it fails)."""
    proc = subprocess.run(
        [str(ROOT / "scripts" / "simulate.sh"), "--candidate", candidate, "--users-per-day", "120", "--seed", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture
def env(s3_server: EmbeddedS3, s3_settings: Settings, tmp_path: Path) -> dict[str, str]:
    drop = ("TMDB_API_KEY", "WANDB_API_KEY", "SERVE_URL", "ADMIN_TOKEN", "S3_USE_AWS")
    base = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("EXPERIMENT")}
    return base | {
        "S3_ENDPOINT_URL": s3_server.endpoint, "S3_BUCKET": s3_settings.s3_bucket, "S3_EMBEDDED": "0",
        "AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "VAR_DIR": str(tmp_path / "var"), "MODEL_CACHE_DIR": str(tmp_path / "model-cache"),
        "WANDB_MODE": "disabled", "WANDB_DIR": str(tmp_path / "wandb"),
        "ADMIN_TOKEN": secrets.token_hex(8), "EXPERIMENT_MIN_USERS": str(MIN_USERS),
    }  # fmt: skip


def test_a_worse_candidate_is_rolled_back_and_a_better_one_promoted(
    s3_settings: Settings, registry: Registry, env: dict[str, str]
) -> None:
    publish_rating(registry)
    trained = publish_trained(registry, s3_settings)

    worse = simulate("worse", env)
    print(worse)
    [ended] = experiments.read_candidates(registry, "recommender").ended
    popularity = ended.experiment.version
    assert ended.outcome == "rolled_back" and ended.experiment.production_version == trained
    assert ended.experiment.started_by == "simulate" and ended.experiment.share == 0.5
    assert registry.manifest("recommender", popularity).algorithm == "popularity"
    assert registry.production_version("recommender") == trained  # a rollback never moves production
    estimate, low, high, _, _ = map(float, INTERVAL.search(worse).groups())
    assert low < estimate < high and estimate < 0  # the printed difference and its 95% interval
    assert "ROLLED_BACK" in worse and re.search(r"users the decision needed: \d+ in production", worse)
    days = _reports(registry, ended.experiment.experiment_id)
    assert days[-1]["verdict"] == "rollback" and days[-1]["arms"]["candidate"]["users"] >= MIN_USERS
    # Shown to be worse: the decision interval of hit rate or MRR lies below 0.
    assert min(d["high"] for d in days[-1]["decision_interval"].values()) < 0
    assert [d["days_running"] for d in days] == list(range(1, len(days) + 1))  # one report per simulated day

    better = simulate("better", env)
    print(better)
    rolled_back, promoted = experiments.read_candidates(registry, "recommender").ended
    assert rolled_back == ended
    assert promoted.outcome == "promoted" and promoted.experiment.version == trained
    assert promoted.experiment.production_version == popularity  # the same baseline, reused, as production
    pointer = registry.pointer("recommender")
    assert pointer.version == trained and pointer.history[-1] == popularity
    estimate, low, high, decision_low, _ = map(float, INTERVAL.search(better).groups())
    assert decision_low < low < estimate < high and estimate > 0 and decision_low > -1.0  # no worse than -δ
    decided = _reports(registry, promoted.experiment.experiment_id)[-1]
    assert (
        decided["verdict"] == "promote"
        and min(d["low"] for d in decided["decision_interval"].values()) > -0.01
    )
    assert "PROMOTED" in better and "latency guard off" in better


def _reports(registry: Registry, experiment_id: str) -> list[dict]:
    """The daily reports of one experiment, oldest first."""
    store, found = registry.store, []
    for folder in sorted(store.list_dirs("reports/experiments")):
        key = f"reports/experiments/{folder}/recommender.json"
        if store.exists(key) and (report := store.get_json(key))["experiment_id"] == experiment_id:
            found.append(report)
    return found
