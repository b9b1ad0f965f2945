"""Where the hyperparameter search keeps its results in S3, and how daily training reads them.

Layout under the bucket::

    tuning/rating/dt=<data day>/<algorithm>.json   one algorithm's search (written by its tune task)
    tuning/rating/dt=<data day>/best.json          every algorithm's latest tuned parameters
    tuning/rating/latest.json                      the same content plus its key, written last

The data day is the one whose stored train/validation split the search ran on. Daily training reads
only latest.json (one small GET, no Optuna import), so the quiet-day rerun stays fast.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from services.core.settings import Settings
from services.core.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

PREFIX = "tuning/rating"
LATEST_KEY = f"{PREFIX}/latest.json"


def day_key(data_day: str, name: str) -> str:
    """A key of one search's partition."""
    return f"{PREFIX}/dt={data_day}/{name}"


def storage_url(settings: Settings) -> str:
    """Optuna's storage URL: OPTUNA_STORAGE_URL, else SQLite at TUNE_SQLITE_PATH (folder made here)."""
    if settings.optuna_storage_url is not None:
        return settings.optuna_storage_url.get_secret_value()
    settings.tune_sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.tune_sqlite_path}"


def storage_kind(url: str) -> str:
    """The database kind of a storage URL (sqlite, postgresql, ...): safe to log and to store."""
    return url.split(":", 1)[0].split("+", 1)[0]


def latest_features(store: ObjectStore) -> tuple[str, dict[str, Any]]:
    """The most recent data day with stored features, and its meta.json (written by build_features)."""
    days = sorted(d.removeprefix("dt=") for d in store.list_dirs("features") if d.startswith("dt="))
    for day in reversed(days):
        try:
            return day, store.get_json(f"features/dt={day}/meta.json")
        except ObjectNotFound:
            continue  # a build_features that crashed before its meta: not a usable split
    raise RuntimeError("no features/dt=*/meta.json in the bucket: run the daily pipeline once first")


def read_latest(store: ObjectStore) -> dict[str, Any] | None:
    """tuning/rating/latest.json, or None before the first search."""
    try:
        return store.get_json(LATEST_KEY)
    except ObjectNotFound:
        return None


def publish(store: ObjectStore, data_day: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """best.json for the data day (this search's algorithms over the previous latest), then latest.json."""
    previous = read_latest(store) or {}
    algorithms = dict(previous.get("algorithms", {}))
    algorithms.update({r["algorithm"]: r for r in results})
    best = {
        "data_day": data_day,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "algorithms": algorithms,
    }
    key = day_key(data_day, "best.json")
    store.put_json(key, best)
    # The pointer last: a reader never sees a latest.json whose best.json is not complete.
    store.put_json(LATEST_KEY, {**best, "key": key})
    log.info("tuned parameters published: %s (%s)", key, ", ".join(sorted(algorithms)))
    return {**best, "key": key}


def tuned_params(store: ObjectStore, algorithm: str) -> dict[str, Any] | None:
    """The latest tuned parameters of an algorithm and the study they came from, or None.

    Returns {"params": {...}, "study": {name, storage, best_value, default_value, data_day, trials}}.
    """
    latest = read_latest(store)
    entry = (latest or {}).get("algorithms", {}).get(algorithm)
    if not entry:
        return None
    study = {
        k: entry.get(k)
        for k in ("study", "storage", "best_value", "default_value", "data_day", "trials_total")
    }
    return {"params": dict(entry["params"]), "study": study}
