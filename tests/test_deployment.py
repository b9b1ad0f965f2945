"""Compose files and Dockerfile: valid against the Compose specification, secrets required, healthchecks.

No Docker engine runs on these machines, so the files are checked the way `docker compose config`
would: schema, interpolation of required variables, and the services each host needs.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILES = ["docker-compose-airflow.yaml", "docker-compose-serve.yaml"]
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def _schema() -> dict:
    # The Compose specification's JSON schema, as vendored by check-jsonschema (a dev dependency).
    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} rules ($$ escapes a dollar)."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name)
        if op == "?" and not value:
            raise ValueError(f"required variable {name} is missing: {arg}")
        if op == "-" and not value:
            return arg
        return value or ""

    return _VAR.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_is_valid_against_the_compose_spec(name: str) -> None:
    jsonschema.validate(_load(name), _schema())


@pytest.mark.parametrize(
    ("name", "required"),
    [
        ("docker-compose-airflow.yaml", {"POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD",
                                         "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}),
        ("docker-compose-serve.yaml", {"S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ADMIN_TOKEN"}),
    ],
)  # fmt: skip
def test_secrets_are_required_and_have_no_defaults(name: str, required: set[str]) -> None:
    text = (ROOT / name).read_text()
    full = {v: "x" for v in required}
    resolved = yaml.safe_load(interpolate(text, full))
    jsonschema.validate(resolved, _schema())
    for var in required:
        with pytest.raises(ValueError, match=var):
            interpolate(text, {k: v for k, v in full.items() if k != var})


def test_training_host_has_the_official_airflow_services() -> None:
    services = _load("docker-compose-airflow.yaml")["services"]
    expected = {"postgres", "seaweedfs", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                "airflow-dag-processor", "airflow-triggerer"}  # fmt: skip
    assert expected <= set(services)
    for name in expected - {"airflow-init"}:
        assert "healthcheck" in services[name], name
    assert services["seaweedfs"]["profiles"] == ["embedded-s3"]  # only when no external S3 is configured


def test_serving_host_checks_readiness() -> None:
    services = _load("docker-compose-serve.yaml")["services"]
    assert "/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["ui"]["environment"]["API_URL"].startswith("http://")


def test_dockerfile_has_the_three_stages_and_no_runtime_pip_install() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", text, re.M)
    names = {s for _, s in stages}
    assert {"train", "serve", "ui"} <= names
    train_base = next(img for img, s in stages if s == "train")
    assert train_base.startswith("apache/airflow:")
    # The project is installed into the image, never at container start.
    assert not re.search(r"^\s*(ENV|ARG)\b.*_PIP_ADDITIONAL_REQUIREMENTS", text, re.M)
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in (ROOT / "docker-compose-airflow.yaml").read_text()
