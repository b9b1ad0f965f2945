"""Loading the candidates of running experiments beside production: a failure here never stops serving.

For each model whose production is loaded, `registry/<model>/candidate.json` may name a running experiment
(services/core/experiments.py). Its candidate is loaded the way production is (every file's sha256
checked, the local cache reused, a version already in memory not fetched again). When it cannot be
loaded, or candidate.json cannot be read, the replica serves production to everyone and says why in
/ready's detail: an experiment is worth less than an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.core.experiments import Experiment, effective_candidate, read_candidates
from services.core.registry import Registry, RegistryError

log = logging.getLogger(__name__)

# (model name, version, bundles already loaded that may be reused) -> a verified bundle, or None
Fetch = Callable[[str, str, Sequence[Any]], Any]


@dataclass(frozen=True)
class Candidates:
    """The candidate bundles that loaded, the experiments they serve, and what went wrong with the others."""

    bundles: dict[str, Any] = field(default_factory=dict)
    experiments: dict[str, Experiment] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def load_candidates(
    registry: Registry, fetch: Fetch, production: Mapping[str, Any], previous: Mapping[str, Sequence[Any]]
) -> Candidates:
    """The candidate of each model with a production bundle and a running experiment, when it loads."""
    out = Candidates()
    for name, bundle in production.items():
        if bundle is None:
            continue  # nothing to compare with: start() refuses such an experiment anyway
        try:
            experiment = effective_candidate(read_candidates(registry, name), bundle.manifest.version)
        except Exception as exc:  # noqa: BLE001 - S3 hiccup, unreadable document: serve production only
            out.problems.append(f"{name} experiments: candidate.json unreadable ({_describe(exc)}); "
                                "serving production to everyone")  # fmt: skip
            log.error("could not read the %s candidate: %s", name, _describe(exc))
            continue
        if experiment is None:
            continue
        try:
            candidate = fetch(name, experiment.version, previous.get(name, ()))
            if candidate is None:
                raise RegistryError("its runtime cannot be imported")
        except Exception as exc:  # noqa: BLE001 - corrupt, missing or unloadable: all mean "no split"
            out.problems.append(
                f"{name} candidate {experiment.version} of experiment {experiment.experiment_id} not served "
                f"({_describe(exc)}); serving production to everyone"
            )
            log.error("could not load %s candidate %s of experiment %s: %s",
                      name, experiment.version, experiment.experiment_id, _describe(exc))  # fmt: skip
            continue
        out.bundles[name] = candidate
        out.experiments[name] = experiment
        log.info("serving %s experiment %s (%s): candidate %s beside production %s, share %.2f",
                 name, experiment.experiment_id, experiment.mode, experiment.version,
                 bundle.manifest.version, experiment.share)  # fmt: skip
    return out


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
