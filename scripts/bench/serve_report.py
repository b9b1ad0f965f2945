"""The report of scripts/bench/serve.py: the markdown table of cells and the summary lines checked
against the targets."""

from __future__ import annotations

from scripts.bench.serve_load import UNIQUE_LABEL, Cell


def table(cells: list[Cell]) -> str:
    """The cells as a markdown table."""
    lines = [
        "| server | endpoint | concurrency | requests | errors | req/s | p50 ms | p99 ms "
        "| server CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        cpu = f"{c.server_cpu_ms:.2f}" if c.server_cpu_ms is not None else "n/a"
        lines.append(
            f"| {c.target.server} | {c.target.name} | {c.concurrency} | {c.sent} | {c.errors} | {c.rps:.0f} "
            f"| {c.p50_ms:.2f} | {c.p99_ms:.2f} | {cpu} |"
        )
    return "\n".join(lines)


def find(cells: list[Cell], name: str, concurrency: int) -> Cell | None:
    """The cell of one target name at one concurrency, if it was measured."""
    return next((c for c in cells if c.target.name == name and c.concurrency == concurrency), None)


def check(what: str, value: str, ok: bool, target: str) -> str:
    """One summary line: a figure, whether it meets its target, and the target."""
    return f"- {what}: {value}: {'met' if ok else 'NOT met'} ({target})"


def summary(cells: list[Cell], ready_s: float | None, top: int) -> list[str]:
    """The figures checked against their targets: time to ready, p99s, throughput ratios, CPU."""
    out = []
    if ready_s is not None:
        out.append(
            check(
                "time to ready (serve.sh started -> /ready 200)", f"{ready_s:.2f} s", ready_s <= 5, "<= 5 s"
            )
        )
    health, predict = find(cells, "GET /health", top), find(cells, "POST /predict", top)
    recommend = find(cells, "POST /recommend", top)
    reference = find(cells, "GET /predict (reference)", top)
    if predict:
        p99 = predict.p99_ms
        out.append(check(f"/predict p99 at concurrency {top}", f"{p99:.1f} ms", p99 <= 15, "<= 15 ms"))
    if predict and reference and reference.rps:
        ratio = predict.rps / reference.rps
        out.append(
            check(f"/predict throughput vs the reference pattern at concurrency {top}", f"{ratio:.1f}x",
                  ratio >= 10, ">= 10x")
            + f"; p99 {reference.p99_ms / predict.p99_ms:.1f}x lower"
        )  # fmt: skip
        ours, theirs = predict.server_cpu_ms, reference.server_cpu_ms
        if ours and theirs:
            out.append(
                f"- server CPU per prediction: reference {theirs:.2f} ms, ours {ours:.2f} ms "
                f"({theirs / ours:.1f}x less)"
            )
    fresh = find(cells, f"POST /predict{UNIQUE_LABEL}", top)
    if fresh and reference and reference.rps:
        ratio = fresh.rps / reference.rps
        out.append(
            check(f"/predict with a new overview each request vs the reference at concurrency {top}",
                  f"{ratio:.1f}x", ratio >= 10, ">= 10x")
            + f"; p99 {fresh.p99_ms:.1f} ms; server CPU {fresh.server_cpu_ms or 0:.2f} ms per prediction"
        )  # fmt: skip
    if predict and health and health.rps:
        share = predict.rps / health.rps
        out.append(
            check(
                f"/predict throughput at concurrency {top} vs /health's",
                f"{share:.0%}",
                share >= 0.5,
                ">= 50%",
            )
        )
        if predict.server_cpu_ms and health.server_cpu_ms:
            out.append(
                f"- server CPU per request: /predict {predict.server_cpu_ms:.2f} ms, /health "
                f"{health.server_cpu_ms:.2f} ms (one core serves at most {1000 / predict.server_cpu_ms:.0f} "
                "predictions/s)"
            )
    if recommend:
        p99 = recommend.p99_ms
        out.append(check(f"/recommend p99 at concurrency {top}", f"{p99:.1f} ms", p99 <= 30, "<= 30 ms"))
    return out


def log_cost(cells: list[Cell], top: int) -> list[str]:
    """/predict with every answer logged against the same server with logging off, same run."""
    on, off = find(cells, "POST /predict", top), find(cells, "POST /predict (logging off)", top)
    if not (on and off and off.rps):
        return []
    ratio = on.rps / off.rps
    out = [
        check(f"/predict throughput logged vs logging off at concurrency {top}", f"{ratio:.2f}x", ratio >= 0.9,
              ">= 0.9x") + f"; p99 {on.p99_ms:.1f} ms logged, {off.p99_ms:.1f} ms off",
    ]  # fmt: skip
    if on.server_cpu_ms and off.server_cpu_ms:
        out.append(
            f"- server CPU per prediction: {on.server_cpu_ms:.3f} ms logged, {off.server_cpu_ms:.3f} ms off "
            f"(logging costs {on.server_cpu_ms - off.server_cpu_ms:+.3f} ms)"
        )
    return out
