"""Candidates in the registry, on a real SeaweedFS server: start, promote, roll back, crash half way."""

from __future__ import annotations

import multiprocessing
import random

import pytest

from services.core import experiments
from services.core.experiments import arm_of, effective_candidate, read_candidates
from services.core.registry import Registry, RegistryError
from services.core.registry_pointer import PointerMoved


def _publish(registry: Registry, payload: bytes, promote: bool) -> str:
    return registry.publish(
        "recommender", {"model.pt": payload}, {"metrics": {}}, promote=promote, reason="test"
    ).version


def test_a_canary_runs_beside_production_and_a_promote_moves_production(registry: Registry) -> None:
    prod = _publish(registry, b"a", promote=True)
    cand = _publish(registry, b"b", promote=False)
    exp = experiments.start(registry, "recommender", cand, share=0.3, started_by="test")
    assert exp.production_version == prod and exp.mode == "canary" and exp.share == 0.3
    doc = read_candidates(registry, "recommender")
    assert effective_candidate(doc, registry.production_version("recommender")) == exp
    with pytest.raises(RegistryError, match="is running"):  # one experiment at a time
        experiments.start(registry, "recommender", cand, share=0.3)
    ended = experiments.end(registry, "recommender", "promoted", "better", experiment_id=exp.experiment_id)
    assert registry.production_version("recommender") == cand
    doc = read_candidates(registry, "recommender")
    assert doc.running is None and doc.ended[-1] == ended and ended.outcome == "promoted"


def test_a_rollback_leaves_production_alone_and_records_why(registry: Registry) -> None:
    prod = _publish(registry, b"a", promote=True)
    cand = _publish(registry, b"b", promote=False)
    exp = experiments.start(registry, "recommender", cand, share=0.2)
    experiments.end(registry, "recommender", "rolled_back", "hit rate worse", figures={"diff": -0.1})
    assert registry.production_version("recommender") == prod
    doc = read_candidates(registry, "recommender")
    assert doc.running is None
    assert (doc.ended[-1].experiment.experiment_id, doc.ended[-1].reason) == (
        exp.experiment_id,
        "hit rate worse",
    )
    with pytest.raises(RegistryError, match="no experiment is running"):
        experiments.end(registry, "recommender", "rolled_back", "again")


def test_no_experiment_without_production_or_of_production_itself(registry: Registry) -> None:
    first = _publish(registry, b"a", promote=False)
    with pytest.raises(RegistryError, match="nothing in production"):
        experiments.start(registry, "recommender", first, share=0.2)
    registry.promote("recommender", first)
    with pytest.raises(RegistryError, match="already is production"):
        experiments.start(registry, "recommender", first, share=0.2)


def test_a_decision_about_an_older_experiment_is_refused(registry: Registry) -> None:
    _publish(registry, b"a", promote=True)
    cand = _publish(registry, b"b", promote=False)
    experiments.start(registry, "recommender", cand, share=0.2)
    with pytest.raises(PointerMoved):
        experiments.end(registry, "recommender", "promoted", "stale", experiment_id="recommender-old")
    assert read_candidates(registry, "recommender").running is not None


def test_promote_refused_when_production_moved_by_hand_meanwhile(registry: Registry) -> None:
    _publish(registry, b"a", promote=True)
    cand = _publish(registry, b"b", promote=False)
    other = _publish(registry, b"c", promote=False)
    experiments.start(registry, "recommender", cand, share=0.2)
    registry.promote("recommender", other, reason="operator")
    with pytest.raises(PointerMoved):
        experiments.end(registry, "recommender", "promoted", "better")
    assert registry.production_version("recommender") == other  # the operator's choice stands


def test_crash_between_promote_and_clear_leaves_pointers_consistent(registry: Registry) -> None:
    _publish(registry, b"a", promote=True)
    cand = _publish(registry, b"b", promote=False)
    experiments.start(registry, "recommender", cand, share=0.2)
    store = registry.store
    original = store.put_bytes_conditional

    def die_on_candidate(key: str, data: bytes, **kwargs: object) -> str:
        if key.endswith("candidate.json"):
            raise ConnectionError("killed mid-decision")
        return original(key, data, **kwargs)  # type: ignore[arg-type]

    store.put_bytes_conditional = die_on_candidate  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        experiments.end(registry, "recommender", "promoted", "better")
    store.put_bytes_conditional = original  # type: ignore[method-assign]
    # Production moved; the stale candidate is the same model, so serving splits nobody.
    doc = read_candidates(registry, "recommender")
    assert registry.production_version("recommender") == cand and doc.running is not None
    assert effective_candidate(doc, cand) is None
    finished = experiments.finish_interrupted(registry, "recommender")
    assert finished is not None and finished.outcome == "promoted"
    assert read_candidates(registry, "recommender").running is None
    assert experiments.finish_interrupted(registry, "recommender") is None


def _arms_in_child(ids: list[str]) -> list[str]:
    return [arm_of("recommender-20261207T000000Z-ab12", u, 0.2) for u in ids]


def test_arm_assignment_is_stable_across_processes_and_the_share_is_right() -> None:
    users = [f"user-{random.Random(7).getrandbits(48)}-{i}" for i in range(20_000)]
    here = _arms_in_child(users)
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a fresh interpreter: new hash seed
        there = pool.apply(_arms_in_child, (users,))
    assert here == there
    share = here.count("candidate") / len(users)
    assert abs(share - 0.2) < 4 * (0.2 * 0.8 / len(users)) ** 0.5  # within 4 standard errors
    # Another experiment splits the same users differently; no user id always gets production.
    other = [arm_of("recommender-20261208T000000Z-cd34", u, 0.2) for u in users]
    assert sum(a != b for a, b in zip(here, other, strict=True)) > 1000
    assert arm_of("x", None, 0.9) == "production" and arm_of("x", "", 0.9) == "production"


def _cli(registry: Registry, *argv: str) -> list[str]:
    from services.core.registry_cli import _parser, run

    out: list[str] = []
    assert run(_parser().parse_args(list(argv)), registry, out) == 0
    return out


def test_registry_sh_starts_a_canary_and_promote_or_rollback_ends_it(registry: Registry) -> None:
    prod = _publish(registry, b"a", promote=True)
    cand = _publish(registry, b"b", promote=False)
    _cli(registry, "canary", "recommender", cand, "--share", "0.25")
    assert read_candidates(registry, "recommender").running.share == 0.25  # type: ignore[union-attr]
    shown = "\n".join(_cli(registry, "experiments", "recommender"))
    assert cand in shown and '"share": 0.25' in shown
    out = _cli(registry, "rollback", "recommender", "--reason", "users clicked less")
    assert registry.production_version("recommender") == prod  # the candidate is dropped, production stays
    assert read_candidates(registry, "recommender").ended[-1].reason == "users clicked less"
    _cli(registry, "canary", "recommender", cand, "--share", "0.5")
    _cli(registry, "promote", "recommender")  # no version: the running candidate
    doc = read_candidates(registry, "recommender")
    assert registry.production_version("recommender") == cand and doc.running is None
    assert [e.outcome for e in doc.ended] == ["rolled_back", "promoted"]
    assert "rollback" in out[-1]  # the hint says how to roll production itself back
