"""Compose files and Dockerfile: valid against the Compose specification, secrets required, healthchecks.

No Docker engine runs on these machines, so the files are checked the way `docker compose config`
would: schema, interpolation of required variables, and the services each host needs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests import prerequisites

ROOT = Path(__file__).resolve().parents[2]
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
        ("docker-compose-airflow.yaml", {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET",
                                         "AIRFLOW__API__SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD",
                                         "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}),
        ("docker-compose-serve.yaml", {"S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ADMIN_TOKEN",
                                       "GRAFANA_ADMIN_PASSWORD", "USER_STORE_URL"}),
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
    expected = {"postgres", "redis", "seaweedfs", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                "airflow-dag-processor", "airflow-triggerer", "airflow-worker-1", "airflow-worker-2"}  # fmt: skip
    assert expected <= set(services)
    for name in expected - {"airflow-init"}:
        assert "healthcheck" in services[name], name
    assert services["seaweedfs"]["profiles"] == ["embedded-s3"]  # only when no external S3 is configured


def test_serving_host_checks_readiness() -> None:
    services = _load("docker-compose-serve.yaml")["services"]
    for api in ("api-1", "api-2"):
        assert "/ready" in " ".join(services[api]["healthcheck"]["test"])
        assert services[api]["environment"]["REPLICA_ID"] == api
    assert services["ui"]["environment"]["API_URL"] == "http://lb:8000"  # through nginx


# ---- compose and scripts/prod.sh share their configuration files ---------------------------------------
def test_training_host_and_prod_sh_share_the_airflow_settings() -> None:
    compose = _load("docker-compose-airflow.yaml")
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-worker-1", "airflow-worker-2"):
        assert compose["services"][name]["env_file"] == ["deploy/airflow/airflow.env"], name
    assert (
        'source "$ROOT/deploy/airflow/airflow.env"' in (ROOT / "scripts" / "prod" / "secrets.sh").read_text()
    )
    settings = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "airflow" / "airflow.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert settings["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert settings["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "services.core.airflow_hostname.hostname"
    # Host-specific values and secrets stay out of the shared file.
    for key in settings:
        assert not re.search(
            r"SQL_ALCHEMY_CONN|BROKER_URL|RESULT_BACKEND|PASSWORD|SECRET|TOKEN|FERNET", key
        ), key
    # The worker naming callable imports (the train image installs services/ as a package).
    from services.core.airflow_hostname import hostname

    assert isinstance(hostname(), str)


def test_serving_host_and_prod_sh_share_the_nginx_config() -> None:
    lb = _load("docker-compose-serve.yaml")["services"]["lb"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in lb["volumes"]}
    assert mounts["/etc/nginx/nginx.conf"] == "./deploy/nginx/nginx.conf"
    assert 'cp "$ROOT/deploy/nginx/nginx.conf"' in (ROOT / "scripts" / "prod" / "serving.sh").read_text()
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    # What differs per host is included from beside nginx.conf; compose mounts its own copies there.
    for include in re.findall(r"^\s*include\s+(\S+);", conf, re.M):
        assert f"/etc/nginx/{include}" in mounts, include
        assert (ROOT / mounts[f"/etc/nginx/{include}"].removeprefix("./")).is_file()
    upstream = (ROOT / "deploy" / "nginx" / "compose" / "upstream.conf").read_text()
    services = _load("docker-compose-serve.yaml")["services"]
    assert set(re.findall(r"server\s+([\w-]+):8000", upstream)) == {"api-1", "api-2"} <= set(services)
    assert "X-Forwarded-For" in conf and "proxy_next_upstream" in conf


def test_nginx_accepts_the_config_with_prod_sh_includes(tmp_path: Path) -> None:
    nginx = prerequisites.program("nginx")
    shutil.copy(ROOT / "deploy" / "nginx" / "nginx.conf", tmp_path / "nginx.conf")
    (tmp_path / "upstream.conf").write_text("upstream api { server 127.0.0.1:1; }\n")
    (tmp_path / "listen.conf").write_text("listen 127.0.0.1:1;\n")
    proc = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "e.log"),
         "-g", f"pid {tmp_path / 'nginx.pid'};"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


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


def test_serving_host_monitors_every_replica_with_the_repo_files() -> None:
    services = _load("docker-compose-serve.yaml")["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prometheus["volumes"] + grafana["volumes"]}
    # Prometheus reads the repo's config folder: prometheus.yml, rules/, targets/compose.json.
    assert mounts["/etc/prometheus"] == "./deploy/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "/-/ready" in " ".join(prometheus["healthcheck"]["test"])
    # The targets file lists exactly the API replica services, on the port their healthcheck probes.
    replicas = {name for name in services if re.fullmatch(r"api-\d+", name)}
    ports = {
        re.search(r"127\.0\.0\.1:(\d+)/ready", " ".join(services[r]["healthcheck"]["test"])).group(1)
        for r in replicas
    }
    groups = json.loads((ROOT / "deploy" / "prometheus" / "targets" / "compose.json").read_text())
    targets = {t for g in groups for t in g["targets"]}
    assert targets == {f"{r}:{p}" for r in replicas for p in ports} and len(replicas) >= 2
    assert {g["labels"]["replica"] for g in groups} == replicas
    # Grafana: the provisioning folder, and the dashboards where the provider looks for them.
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == "./deploy/grafana/dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/") and (ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"  # the service above, its own port
    for mounted in (v for v in mounts.values() if v.startswith("./")):
        assert (ROOT / mounted).exists(), mounted
    assert {"prometheus-data", "grafana-data"} <= set(_load("docker-compose-serve.yaml")["volumes"])
