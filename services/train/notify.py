"""The pipeline's last step: make every API replica serve what the production pointers name.

It compares what each replica holds (GET /ready) with the pointers, not with what this try of the run
did: a retry of a task whose first try promoted and then died reports "not promoted", yet the pointer
has moved, and serving must follow it. A replica already on the pointers is left alone.

The candidates of running experiments (registry/<model>/candidate.json) count too: starting or ending an
experiment reloads the replicas even though production did not move.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from services.core.experiments import effective_candidate, read_candidates
from services.core.registry import MODEL_NAMES, Registry
from services.train.context import Context

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10
RELOAD_TIMEOUT_S = 60  # a reload downloads and verifies the new model files


def serving_urls(serve_url: str | None) -> list[str]:
    """The replicas to reload: SERVE_URL is one URL or a comma-separated list of them."""
    return [u.strip().rstrip("/") for u in (serve_url or "").split(",") if u.strip()]


# What a replica serves, as /ready and /admin/reload name it: production, then each model's candidate.
CANDIDATE_KEYS = {"recommender": "recommender_candidate_version", "rating": "rating_shadow_version"}
SERVED_KEYS = (*(f"{m}_version" for m in MODEL_NAMES), *(CANDIDATE_KEYS[m] for m in MODEL_NAMES))


def _versions(body: dict[str, Any]) -> dict[str, str | None]:
    """The versions a /ready or /admin/reload answer says are served (a replica from before experiments
    names no candidate: None, which is right while none runs)."""
    return {k: body.get(k) for k in SERVED_KEYS}


def _wanted(registry: Registry) -> dict[str, str | None]:
    """What every replica should serve: the production pointers and the candidates of running experiments."""
    wanted: dict[str, str | None] = {}
    for m in MODEL_NAMES:
        production = registry.production_version(m)
        experiment = effective_candidate(read_candidates(registry, m), production)
        wanted[f"{m}_version"] = production
        wanted[CANDIDATE_KEYS[m]] = experiment.version if experiment else None
    return {k: wanted[k] for k in SERVED_KEYS}


def _production(wanted: dict[str, str | None]) -> dict[str, str | None]:
    return {m: wanted[f"{m}_version"] for m in MODEL_NAMES}


def _held(url: str) -> dict[str, str | None] | None:
    """What a replica serves, per /ready; None when it does not say (not ready, or an odd answer)."""
    resp = httpx.get(url + "/ready", timeout=READY_TIMEOUT_S)
    if resp.status_code != 200:
        return None
    try:
        return _versions(resp.json())
    except ValueError:
        return None


def notify_serving(ctx: Context, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Reload every API replica whose served versions differ from the production pointers (or from the
    candidates of running experiments).

    SERVE_URL lists the replicas themselves, not the load balancer (which would reach only one). A
    replica that cannot be reached is down: it loads the production versions when it starts again, so it
    is logged and skipped. A replica that refuses the reload (wrong token, failed load), or that still
    serves other versions than the pointers after it, fails the task, as does reaching none, after every
    replica has been tried.
    """
    urls = serving_urls(ctx.settings.serve_url)
    if not urls:
        log.info("SERVE_URL not set: serving will pick the production versions up at its next start")
        return {"notified": False, "reason": "SERVE_URL not set"}
    wanted = _wanted(ctx.registry)
    promoted = [r.get("version") for r in results if r.get("promoted")]
    log.info("serving should hold %s; this try promoted %s", wanted, promoted or "nothing")
    if not any(_production(wanted).values()):
        log.info("nothing in production yet: no reload")
        return {"notified": False, "reason": "nothing in production yet", "production": _production(wanted)}
    headers = {}
    if ctx.settings.admin_token is not None:
        headers["Authorization"] = f"Bearer {ctx.settings.admin_token.get_secret_value()}"
    in_sync: list[str] = []
    reloaded: dict[str, Any] = {}
    unreachable: dict[str, str] = {}
    failed: dict[str, str] = {}
    for url in urls:
        try:
            held = _held(url)
            if held == wanted:
                log.info("replica %s already serves %s: no reload", url, held)
                in_sync.append(url)
                continue
            log.info("replica %s serves %s, the registry names %s: reloading", url, held, wanted)
            resp = httpx.post(url + "/admin/reload", headers=headers, timeout=RELOAD_TIMEOUT_S)
        except httpx.TransportError as exc:
            log.warning("replica %s unreachable (%s): it loads production at its next start", url, exc)
            unreachable[url] = f"{type(exc).__name__}: {exc}"
            continue
        if not resp.is_success:
            failed[url] = f"HTTP {resp.status_code}: {resp.text[:300]}"
            log.error("replica %s refused the reload: %s", url, failed[url])
            continue
        body = resp.json()
        now = _versions(body)
        if now != wanted:
            # The pointers may have moved during the reload (an operator's rollback): judge by them now.
            wanted = _wanted(ctx.registry)
        if now != wanted:
            # A candidate that failed to load leaves the replica on production alone: said here, not hidden.
            failed[url] = f"reloaded, but serves {now} while the registry names {wanted}"
            log.error("replica %s %s", url, failed[url])
            continue
        reloaded[url] = body
        log.info("replica %s reloaded: %s", url, body)
    if failed or not (reloaded or in_sync):
        raise RuntimeError(
            f"serving not on the registry's {wanted} on {len(failed) + len(unreachable)} of {len(urls)} "
            "replicas: " + "; ".join(f"{u}: {why}" for u, why in {**failed, **unreachable}.items())
        )
    return {
        "notified": bool(reloaded),
        "production": _production(wanted),
        "candidates": {m: wanted[CANDIDATE_KEYS[m]] for m in MODEL_NAMES},
        "reloaded": reloaded,
        "in_sync": in_sync,
        "unreachable": unreachable,
    }
