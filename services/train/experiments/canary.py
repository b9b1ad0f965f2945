"""A recommender that beats production offline becomes a canary instead of production (EXPERIMENTS=1).

Offline validation says a version ranks held-out MovieLens histories better; only the app's users can
say whether they like what it shows. So the pipeline publishes it unpromoted and starts an experiment:
it serves `experiment_share` of users until `judge_experiment` promotes or rolls it back. One
experiment runs at a time; a better version trained meanwhile is published and waits (the next run
that trains on new data compares again, against whatever production is by then).
"""

from __future__ import annotations

import logging
from typing import Any

from services.core import experiments
from services.core.experiments import Experiment
from services.core.registry import Registry
from services.core.registry_pointer import RegistryError
from services.core.settings import Settings

log = logging.getLogger(__name__)

MODEL_NAME = "recommender"


def running_canary(registry: Registry) -> Experiment | None:
    """The recommender experiment serving users now (None when none, or its candidate is production)."""
    doc = experiments.read_candidates(registry, MODEL_NAME)
    return experiments.effective_candidate(doc, registry.production_version(MODEL_NAME))


def start_or_wait(settings: Settings, registry: Registry, version: str, reason: str) -> dict[str, Any]:
    """Start `version` (published, not promoted) as the canary; or say which experiment it waits for.

    Returns the decision record's fields: candidate, experiment_id, waiting_for and the reason.
    """
    running = running_canary(registry)
    if running is None:
        try:
            exp = experiments.start(
                registry, MODEL_NAME, version, share=settings.experiment_share, rule=experiments.rule_from_settings(settings),
                started_by="pipeline", reason=reason,
            )  # fmt: skip
        except RegistryError as exc:  # started meanwhile (registry.sh canary): this version waits
            log.warning("recommender %s: no experiment started: %s", version, exc)
            running = running_canary(registry)
            if running is None:
                raise
        else:
            return {
                "candidate": True, "experiment_id": exp.experiment_id, "waiting_for": None,
                "reason": f"{reason}; candidate of experiment {exp.experiment_id} for "
                f"{exp.share:.0%} of users, against production {exp.production_version}",
            }  # fmt: skip
    return {
        "candidate": False, "experiment_id": None, "waiting_for": running.experiment_id,
        "reason": f"{reason}; published, not promoted: experiment {running.experiment_id} "
        f"({running.version}) is running, this version waits",
    }  # fmt: skip
