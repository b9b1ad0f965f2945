"""One settings object, read from the environment (and an optional .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Every knob of the stack. Secrets have no defaults and are never logged (SecretStr)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # --- S3 model registry and data lake -------------------------------------------------------
    # Empty endpoint means AWS; the embedded SeaweedFS default is set by scripts/env.sh.
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint; empty for AWS")
    s3_bucket: str = "movie-intel"
    s3_region: str = "us-east-1"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    s3_connect_timeout_s: float = 3.0
    s3_read_timeout_s: float = 30.0
    s3_max_attempts: int = 4

    # --- Data sources --------------------------------------------------------------------------
    tmdb_api_key: SecretStr | None = None  # v3 key or v4 read token; unset means the snapshot
    tmdb_base_url: str = "https://api.themoviedb.org/3"
    tmdb_language: str = "en-US"
    tmdb_region: str | None = None
    tmdb_pages: int = 5  # 20 movies a page: ~100 a day
    tmdb_requests_per_second: float = 20.0
    snapshot_dir: Path = PROJECT_ROOT / "data" / "snapshot"
    snapshot_backfill_holdback: int = 500  # most recent releases kept back for later days
    snapshot_daily_movies: int = 100

    # --- Training --------------------------------------------------------------------------------
    min_vote_count: int = 10  # a vote_average from fewer votes is noise, not a label
    max_bad_row_fraction: float = 0.2
    max_generalization_gap: float = 0.6  # hold-out RMSE minus train RMSE allowed for a challenger
    recommender_max_epochs: int | None = None  # cap for quick runs (tests); None trains to early stop
    wandb_mode: str = "offline"
    wandb_api_key: SecretStr | None = None
    wandb_project: str = "movie-intel"
    wandb_dir: Path = PROJECT_ROOT / "var" / "wandb"
    # The weekly hyperparameter search (services/train/rating/tuning/search.py): per-algorithm trial cap, a time budget
    # for all algorithms together, and where Optuna keeps its studies. The storage URL is a secret when it
    # holds a password (prod: Postgres); unset, studies go to SQLite at tune_sqlite_path.
    tune_trials: int = Field(default=60, ge=1)
    tune_timeout_s: float = Field(default=600.0, gt=0)
    tune_algorithms: str = "xgboost,lightgbm,random_forest"
    optuna_storage_url: SecretStr | None = None
    tune_sqlite_path: Path = PROJECT_ROOT / "var" / "optuna.db"

    # --- Monitoring (the DAG's evaluate_live, monitor and alert tasks) -------------------------------
    alert_rmse_margin: float = 0.5  # live RMSE (7 days) above validation RMSE by more than this: alert
    alert_live_min_count: int = 20  # fewer new labelled movies in the window: too few to judge
    alert_drift_share: float = 0.3  # share of monitored features Evidently finds drifted: alert above
    # Which drift comparisons can raise an alert. New releases differ from the training catalogue every day
    # (fewer votes, shorter overviews), so "collected" is reported but judged through the live RMSE.
    alert_drift_comparisons: str = "requests"
    drift_min_rows: int = 10  # fewer rows on a day: "not enough to compare", not a drift verdict
    # Logged predictions (and training rows) a day's drift report compares at most: a seeded uniform
    # sample, so a busy day costs and means what a day of this many rows does (monitoring/drift.py).
    drift_sample_rows: int = Field(default=5000, ge=100)
    alert_webhook_url: SecretStr | None = None  # Slack-style incoming webhook (the URL is the secret)

    # --- Online experiments (services/core/experiments.py, services/train/experiments/stats.py) -------
    # On: a recommender that beats production offline becomes a canary for a share of users, decided by
    # what they did; off: it goes straight to production, as before. A first version always does.
    experiments: bool = True
    experiment_share: float = Field(default=0.2, gt=0.0, lt=1.0)  # users who get the candidate
    experiment_delta: float = Field(default=0.01, ge=0.0)  # non-inferiority margin on hit rate
    experiment_min_users: int = Field(default=200, ge=1)  # per arm, before a decision
    experiment_max_days: int = Field(default=7, ge=1)  # then rolled back as inconclusive
    experiment_bootstrap: int = Field(default=2000, ge=100)  # resamples of users for the intervals
    # Guards from the replicas' metrics: the candidate arm's p99 latency and error rate may not exceed
    # production's by more than these.
    experiment_max_latency_ratio: float = Field(default=1.5, gt=1.0)
    experiment_max_error_rate_gap: float = Field(default=0.01, ge=0.0)

    # --- Precomputed recommendations (services/train/recommender/precompute.py, the DAG's precompute_recs) ------
    # Top-k for every user active in the last precompute_days before the data day, loaded into the user
    # store (USER_STORE_URL) so /recommend answers them from the cache until they do something new.
    precompute_days: int = Field(default=30, ge=1)
    precompute_movielens: bool = False  # also the snapshot's MovieLens users (demos, the benchmark)
    precompute_k: int = Field(default=10, ge=1, le=100)

    # --- Serving ---------------------------------------------------------------------------------
    serve_url: str | None = None  # the DAG's last task POSTs /admin/reload here when set
    admin_token: SecretStr | None = None
    model_cache_dir: Path = PROJECT_ROOT / "var" / "model-cache"
    translate_timeout_s: float = 2.0
    translate_base_url: str | None = None  # a Google-Translate-compatible endpoint; None: Google's own
    poster_base_url: str = "https://image.tmdb.org/t/p/w342"
    # The event spool (feedback, impressions): one folder per replica, flushed to S3 in the background.
    # Issue 18: each run re-curates this many days before its data day, so late batches count.
    recuration_days: int = Field(default=3, ge=0, le=30)
    spool_dir: Path = PROJECT_ROOT / "var" / "spool"
    replica_id: str | None = None  # unset: generated once and kept in the spool folder
    spool_synchronous: str = "NORMAL"  # predictions, impressions: NORMAL survives a kill; FULL a power cut
    # feedback is always committed with FULL (fsynced before its 202): services/serve/spool.py
    spool_flush_interval_s: float = 2.0
    spool_flush_rows: int = 5000  # flush early once this many are waiting
    spool_max_pending: int = 1_000_000  # more waiting than this: 503 until S3 catches up
    spool_max_outage_s: float = 600.0  # S3 unreachable for longer: 503 instead of piling up
    spool_dedup_days: int = 7  # a retried event id is recognised for this long after its upload

    # Users known by their id (services/core/user_store.py): Redis at USER_STORE_URL when set (the prod
    # shape, shared by the replicas: redis://:password@host:6379/1), else SQLite at USER_STORE_PATH (unset:
    # users.db in the replica's spool folder, var/spool/users.db). A user untouched this long is forgotten.
    user_store_url: SecretStr | None = None
    user_store_path: Path | None = None
    user_ttl_days: float = Field(default=180, gt=0)

    # Who is who (services/core/identity.py). User tokens are signed with USER_TOKEN_KEYS ("kid1:secret1,
    # kid2:secret2": the first signs, every one verifies, so a key is rotated by putting a new one first and
    # dropping the old one after a token lifetime) or one USER_TOKEN_SECRET (kid "default"); each secret at
    # least 32 bytes. 30 days: the UI renews a visitor's token on every visit, so only someone away longer
    # starts over, while a shared or leaked token stops working within a month of its last renewal.
    user_token_keys: SecretStr | None = Field(default=None, description="kid:secret,... (first signs)")
    user_token_secret: SecretStr | None = Field(default=None, description="one signing key (kid 'default')")
    user_token_ttl_s: float = Field(default=30 * 86400, gt=0, description="a user token's lifetime")
    # Clients' API keys, hashed (./scripts/keys.sh; scripts/env.sh sets $VAR_DIR/api_keys.json). Unset: no
    # client keys are accepted.
    api_keys_file: Path | None = Field(default=None, description="the hashed client keys (keys.sh)")

    # /predict requests logged to the predictions stream (for drift): share of requests, and whether the
    # overview text itself is kept (by default only its features and length are).
    prediction_log_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    prediction_log_text: bool = False

    # --- UI --------------------------------------------------------------------------------------
    api_url: str = "http://127.0.0.1:8000"
    api_public_url: str | None = None  # where browsers reach the API (report links); unset: api_url

    def s3_client_kwargs(self) -> dict:
        """Keyword arguments for boto3.client('s3', ...), secrets unwrapped only here."""
        kwargs: dict = {"region_name": self.s3_region}
        if self.s3_endpoint_url:
            kwargs["endpoint_url"] = self.s3_endpoint_url
        if self.aws_access_key_id and self.aws_secret_access_key:
            kwargs["aws_access_key_id"] = self.aws_access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key.get_secret_value()
        return kwargs


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import)."""
    return Settings()
