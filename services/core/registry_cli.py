"""The registry CLI behind scripts/registry.sh: list, show, verify, promote and roll back models."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from botocore.exceptions import BotoCoreError, ClientError

from services.core import experiments
from services.core.registry import MODEL_NAMES, ChecksumError, Registry, RegistryError
from services.core.settings import get_settings
from services.core.storage import ObjectStore

log = logging.getLogger("registry")

_HEADLINE = {"rating": "val_rmse", "recommender": "val_ndcg_at_10"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry.sh",
        description="Inspect and manage the S3 model registry (models: rating, recommender).",
        epilog="Examples: registry.sh versions rating | registry.sh verify recommender | "
        "registry.sh promote rating 20261120T101500Z-1a2b3c | registry.sh rollback rating | "
        "registry.sh pointer rating | registry.sh canary recommender 20261120T101500Z-1a2b3c --share 0.2 | "
        "registry.sh experiments recommender. Pointer changes are conditional writes: a rollback that finds "
        "production moved under it (a run promoting at the same moment) changes nothing and exits 2. "
        "While an experiment runs, promote and rollback end it (promote: the candidate becomes production; "
        "rollback: the candidate is dropped, production stays).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("ls", help="list the bucket's objects (optionally under a prefix)")
    ls.add_argument("prefix", nargs="?", default="")
    for name, text in (
        ("versions", "list a model's complete versions; * marks production"),
        ("show", "print a manifest as JSON (production when no version is given)"),
        ("verify", "re-check every file's sha256 (exit 1 on a mismatch)"),
        ("promote", "point production at a version (checked first); ends a running experiment"),
        (
            "rollback",
            "point production back at the previous version; with an experiment running, drop its "
            "candidate instead",
        ),
        ("pointer", "print the production pointer: version, history, and every change with its reason"),
        (
            "canary",
            "start an experiment: a recommender serves a share of users, a rating model runs in shadow",
        ),
        ("experiments", "print the running experiment and how the recent ones ended"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("model", choices=MODEL_NAMES)
        if name in ("show", "verify"):
            p.add_argument("version", nargs="?")
        elif name == "promote":
            p.add_argument("version", nargs="?", help="default: the running experiment's candidate")
        elif name == "canary":
            p.add_argument("version")
            p.add_argument(
                "--share",
                type=float,
                default=None,
                help="share of users who get the candidate (recommender; default EXPERIMENT_SHARE)",
            )
            p.add_argument("--reason", default="started by hand (registry.sh)")
        elif name == "rollback":
            p.add_argument(
                "--from", dest="expected_from", metavar="VERSION",
                help="roll back only if production is still VERSION (default: production when run)",
            )  # fmt: skip
            p.add_argument("--reason", default="", help="why, recorded in the pointer's change trail")
    return parser


def run(args: argparse.Namespace, registry: Registry, out: list[str]) -> int:
    """Execute one command, appending output lines; returns the exit code."""
    if args.command == "ls":
        for obj in registry.store.list(args.prefix):
            out.append(f"{obj.modified:%Y-%m-%d %H:%M:%S}  {obj.size:>10}  {obj.key}")
        return 0
    if args.command == "versions":
        prod = registry.production_version(args.model)
        for v in registry.versions(args.model):
            m = registry.manifest(args.model, v)
            metric = _HEADLINE[args.model]
            value = m.metrics.get(metric)
            shown = f"{metric}={value:.4f}" if isinstance(value, int | float) else ""
            out.append(f"{'*' if v == prod else ' '} {v}  {m.created_at}  {m.algorithm or '':<14} {shown}")
        return 0
    if args.command == "show":
        out.append(registry.manifest(args.model, args.version).model_dump_json(indent=2))
        return 0
    if args.command == "verify":
        version = args.version or registry.production_version(args.model)
        problems = registry.verify(args.model, version)
        if problems:
            out.extend(f"MISMATCH {p}" for p in problems)
            return 1
        n = len(registry.manifest(args.model, version).files)
        out.append(f"OK {args.model} {version}: {n} files match their sha256")
        return 0
    if args.command in ("promote", "rollback", "canary", "experiments"):
        return _pointer_command(args, registry, out)
    if args.command == "pointer":
        pointer = registry.pointer(args.model)
        if pointer is None:
            raise RegistryError(f"{args.model}: nothing promoted yet")
        out.append(json.dumps(pointer.model_dump(), indent=2))
        return 0
    raise AssertionError(args.command)


def _pointer_command(args: argparse.Namespace, registry: Registry, out: list[str]) -> int:
    """promote, rollback, canary and experiments: the commands that change or show who serves."""
    running = experiments.read_candidates(registry, args.model).running
    if args.command == "experiments":
        out.append(experiments.read_candidates(registry, args.model).model_dump_json(indent=2))
        return 0
    if args.command == "canary":
        share = args.share if args.share is not None else get_settings().experiment_share
        if not 0.0 < share < 1.0:
            raise RegistryError(f"--share must be between 0 and 1 (exclusive), got {share}")
        exp = experiments.start(registry, args.model, args.version, share=share, rule=experiments.rule_from_settings(get_settings()),
                                started_by="registry.sh", reason=args.reason)  # fmt: skip
        out.append(exp.model_dump_json(indent=2))
        out.append("serving picks it up at its next reload: POST /admin/reload on every replica")
        return 0
    if args.command == "promote":
        version = args.version or (running.version if running else None)
        if version is None:
            raise RegistryError(f"{args.model}: no experiment is running; name the version to promote")
        if running is not None and running.version == version:
            end = experiments.end(registry, args.model, "promoted", "promoted by hand (registry.sh)",
                                  experiment_id=running.experiment_id)  # fmt: skip
            out.append(end.model_dump_json(indent=2))
            return 0
        p = registry.promote(args.model, version, reason="promoted by hand (registry.sh)")
        out.append(json.dumps(p.model_dump(), indent=2))
        if running is not None:
            out.append(f"note: experiment {running.experiment_id} was run against the previous production; "
                       "the next decision ends it as aborted")  # fmt: skip
        return 0
    if running is not None and running.version != registry.production_version(args.model):
        end = experiments.end(registry, args.model, "rolled_back", args.reason or "rolled back by hand (registry.sh)",
                              experiment_id=running.experiment_id)  # fmt: skip
        out.append(end.model_dump_json(indent=2))
        out.append(
            f"production stays {running.production_version}; run rollback again to roll production back"
        )
        return 0
    p = registry.rollback(args.model, expected_from=args.expected_from, reason=args.reason)
    out.append(json.dumps(p.model_dump(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 on success, 1 on a failed check, 2 on an error."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = get_settings()
    registry = Registry(ObjectStore.from_settings(settings))
    out: list[str] = []
    try:
        code = run(args, registry, out)
    except (RegistryError, ChecksumError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1 if isinstance(exc, ChecksumError) else 2
    except (BotoCoreError, ClientError) as exc:
        sys.stderr.write(f"error: S3 at {settings.s3_endpoint_url or 'AWS'} ({settings.s3_bucket}): {exc}\n")
        return 2
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
