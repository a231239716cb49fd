"""Keep the container and Kubernetes files honest (no Docker, Helm or network needed).

Docker and Kubernetes do not run where the tests run, so deploy/docker/ and deploy/helm/ are
checked on paper: they parse, they publish nothing beyond loopback, they hold no password,
and every command, environment variable, port and name they use agrees with the package and
with each other.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from mlops_assets.cli.commands import build_parser
from mlops_assets.runtime.tracking_server import server_command, server_environment

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "docker-compose.yml"
COMPOSE_WORKSPACE = DOCKER / "workspace.yaml"
POSTGRES_INIT = DOCKER / "postgres-init.sql"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
MLFLOW_MANIFESTS = ROOT / "deploy" / "helm" / "mlflow.yaml"
INSTANCE_YAML = ROOT / "deploy" / "production" / "dagster.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"

YAML_FILES = [COMPOSE, COMPOSE_WORKSPACE, HELM_VALUES, MLFLOW_MANIFESTS]
DEPLOY_FILES = [*YAML_FILES, DOCKERFILE, POSTGRES_INIT, DOCKERIGNORE]

# What a worker (and the code server, where runs start) needs in production; see
# mlops_assets/runtime/workers.py and the instance yaml.
WORKER_ENV = {
    "MLOPS_ENV",
    "DAGSTER_HOME",
    "DAGSTER_PG_URL",
    "MLOPS_DATA_DIR",
    "MLFLOW_TRACKING_URI",
    "MLOPS_CELERY_BROKER",
    "MLOPS_CELERY_BACKEND",
}
SHELL_SEPARATORS = {"&&", "||", ";", "|"}


# ---------------------------------------------------------------------------------------------
# Readers


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _load(COMPOSE)["services"]
    return services


def _app_image() -> str:
    image: str = _load(COMPOSE)["x-app"]["image"]
    return image


def _app_services() -> dict[str, dict[str, Any]]:
    """The services that run the project's image (the others are PostgreSQL and RabbitMQ)."""
    return {
        name: service
        for name, service in _compose_services().items()
        if service.get("image") == _app_image()
    }


def _argv(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in _dockerfile_instructions():
        if keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def _dockerfile_cmd() -> list[str]:
    cmds = [args for keyword, args in _dockerfile_instructions() if keyword == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    parsed: list[str] = json.loads(cmds[-1])  # exec form: signals reach the server itself
    return parsed


def _option(argv: list[str], *names: str) -> str:
    """The value following the first of ``names`` in ``argv``."""
    for index, token in enumerate(argv[:-1]):
        if token in names:
            return argv[index + 1]
    raise AssertionError(f"none of {names} in {argv}")


def _mlops_assets_invocations(argv: list[str]) -> Iterator[list[str]]:
    """Every ``mlops-assets ...`` argument list in a command, shell scripts (sh -c) included."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "mlops-assets":
            end = index + 1
            while end < len(argv) and argv[end] not in SHELL_SEPARATORS:
                end += 1
            yield argv[index + 1 : end]
            index = end
            continue
        if " " in token:  # a script handed to a shell
            yield from _mlops_assets_invocations(shlex.split(token))
        index += 1


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _k8s_containers() -> list[dict[str, Any]]:
    return [
        container
        for doc in _load_all(MLFLOW_MANIFESTS)
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def _user_deployment() -> dict[str, Any]:
    deployments = _load(HELM_VALUES)["dagster-user-deployments"]["deployments"]
    (deployment,) = [d for d in deployments if d["name"] == "mlops-assets"]
    return dict(deployment)


def _names_read_by_the_code() -> set[str]:
    """Environment variable names quoted in the package source or read by the instance yaml."""
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "mlops_assets").rglob("*.py")
    )
    names = set(re.findall(r"""["']([A-Z][A-Z0-9_]{2,})["']""", source))
    for node in _walk(_load(INSTANCE_YAML)):
        if isinstance(node, dict) and isinstance(node.get("env"), str):
            names.add(node["env"])  # e.g. postgres_url: {env: DAGSTER_PG_URL}
    return names


def _parse_cli(argv: list[str]) -> argparse.Namespace:
    """Parse with the real parser; a usage error becomes a readable assertion."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(argv)
    except SystemExit as exit_:
        raise AssertionError(f"mlops-assets {shlex.join(argv)}: {stderr.getvalue()}") from exit_


# ---------------------------------------------------------------------------------------------
# Secrets

# scheme://user:password@ where the password is a ${...} reference or a literal.
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<password>\$\{[^}]*\}|[^@\s/]+)@")
_SECRET_KEY = re.compile(r"pass|token", re.IGNORECASE)


def _is_reference(value: str) -> bool:
    """An interpolated ${VAR...}, or a <placeholder> in a comment: no password is written."""
    return (
        value == ""
        or bool(re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?-][^}]*)?\}", value))
        or bool(re.fullmatch(r"<[a-z-]+>", value))
    )


def _literal_secrets(text: str, documents: list[Any]) -> list[str]:
    """Passwords written in the text: in URLs, as values of password-like keys or env entries."""
    found = [
        match.group(0)
        for match in _URL_CREDENTIALS.finditer(text)
        if not _is_reference(match.group("password"))
    ]
    for node in _walk(documents):
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if isinstance(value, str) and _SECRET_KEY.search(str(key)) and not _is_reference(value):
                found.append(f"{key}: {value}")
        # A Kubernetes env entry: a password-like name must come from a secretKeyRef.
        name = node.get("name")
        if (
            isinstance(name, str)
            and _SECRET_KEY.search(name)
            and not _is_reference(str(node.get("value", "")))
        ):
            found.append(f"{name}={node['value']}")
    return found


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda path: path.name)
def test_every_yaml_file_parses(path: Path) -> None:
    """Each YAML file (the manifests file holds several documents) parses to mappings."""
    documents = _load_all(path)
    assert documents
    assert all(isinstance(document, dict) for document in documents)


def test_compose_publishes_ports_on_loopback_only() -> None:
    """Published ports bind 127.0.0.1; nothing shares the host's network."""
    published = []
    for name, service in _compose_services().items():
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):
            if isinstance(port, dict):  # long syntax
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                # Short syntax "IP:HOST:CONTAINER": without the IP Docker binds 0.0.0.0.
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
                assert str(port).count(":") == 2, f"{name}: {port}"
            published.append(name)
    # The check above is vacuous if nothing is published: the two UIs must be.
    assert {"webserver", "mlflow"} <= set(published)
    assert "ports" not in _compose_services()["postgres"]


def test_the_secret_check_catches_literal_passwords() -> None:
    """The checker below is not blind: planted passwords are found, references are not."""
    planted = _literal_secrets(
        "url: postgresql://dagster:hunter2@postgres:5432/dagster",
        [{"POSTGRES_PASSWORD": "hunter2"}, {"env": [{"name": "DB_PASSWORD", "value": "x"}]}],
    )
    assert len(planted) == 3
    fine = "url: postgresql://dagster:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}@postgres/dagster"
    assert _literal_secrets(fine, [{"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set it}"}]) == []


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda path: path.name)
def test_no_literal_password(path: Path) -> None:
    """Passwords appear only as ${VAR...} references (compose) or secretKeyRef (Kubernetes)."""
    text = path.read_text(encoding="utf-8")
    documents = _load_all(path) if path in YAML_FILES else []
    assert _literal_secrets(text, documents) == []
    if path == DOCKERFILE:
        # Nothing secret is baked into a layer.
        for keyword, args in _dockerfile_instructions():
            if keyword in {"ENV", "ARG"}:
                assert not re.search(r"pass|token|secret|webhook", args, re.IGNORECASE), args


def test_every_mlops_assets_command_exists_and_parses() -> None:
    """Each `mlops-assets <subcommand> ...` in compose, manifests and Dockerfile parses."""
    compose = [
        argv
        for service in _compose_services().values()
        for argv in _mlops_assets_invocations(_argv(service.get("command")))
    ]
    k8s = [
        argv
        for container in _k8s_containers()
        for argv in _mlops_assets_invocations(
            _argv(container.get("command")) + _argv(container.get("args"))
        )
    ]
    dockerfile = [
        argv
        for keyword, args in _dockerfile_instructions()
        if keyword in {"RUN", "CMD", "ENTRYPOINT"}
        for argv in _mlops_assets_invocations(
            json.loads(args) if args.startswith("[") else shlex.split(args)
        )
    ]
    for argv in compose + k8s + dockerfile:
        _parse_cli(argv)
    # The extraction itself must keep finding the commands the stack depends on.
    assert {argv[0] for argv in compose} == {
        "seed",
        "register-months",
        "tracking-server",
        "workers",
    }
    assert {argv[0] for argv in k8s} == {"tracking-server"}


def test_tracking_servers_use_postgresql_and_answer_their_clients() -> None:
    """Each tracking server gets a PostgreSQL store and accepts the Host its clients send."""
    mlflow = _compose_services()["mlflow"]
    (argv,) = _mlops_assets_invocations(_argv(mlflow["command"]))
    args = _parse_cli(argv)
    # The store URL (it holds the password) comes from the environment, not the command line.
    assert "--backend-store-uri" not in argv
    store = mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert server_environment(store) == {  # PostgreSQL, and no job runner
        "MLFLOW_BACKEND_STORE_URI": store,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    command = server_command(args.artifacts_destination, args.host, args.port, args.allowed_hosts)
    assert store not in " ".join(command)
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from the network
    tracking = urlsplit(_app_services()["workers"]["environment"]["MLFLOW_TRACKING_URI"])
    assert tracking.netloc in args.allowed_hosts.split(",")
    assert tracking.hostname == "mlflow"
    assert tracking.port == args.port
    # The database it names is the one postgres-init.sql creates, in the volume it mounts.
    database = urlsplit(store.replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "x")).path
    assert f"CREATE DATABASE {database.lstrip('/')} " in POSTGRES_INIT.read_text(encoding="utf-8")
    postgres_mounts = _compose_services()["postgres"]["volumes"]
    assert any(
        mount.startswith("./postgres-init.sql:/docker-entrypoint-initdb.d/")
        for mount in postgres_mounts
    )
    assert f"artifacts:{args.artifacts_destination}" in mlflow["volumes"]

    # Kubernetes: the same command, its store from a Secret, the Service name its clients use.
    (container,) = _k8s_containers()
    (k8s_argv,) = _mlops_assets_invocations(_argv(container["command"]))
    k8s_args = _parse_cli(k8s_argv)
    (store_env,) = [e for e in container["env"] if e["name"] == "MLFLOW_BACKEND_STORE_URI"]
    assert "secretKeyRef" in store_env["valueFrom"]
    helm_env = {e["name"]: e["value"] for e in _user_deployment()["env"]}
    k8s_tracking = urlsplit(helm_env["MLFLOW_TRACKING_URI"])
    assert k8s_tracking.netloc in k8s_args.allowed_hosts.split(",")
    (service,) = [doc for doc in _load_all(MLFLOW_MANIFESTS) if doc["kind"] == "Service"]
    assert service["metadata"]["name"] == k8s_tracking.hostname
    assert [port["port"] for port in service["spec"]["ports"]] == [k8s_tracking.port]


def test_compose_app_env_vars_are_ones_the_code_reads() -> None:
    """A variable the code never reads is a typo or a leftover; the workers get what they need."""
    read = _names_read_by_the_code()
    image_env = set(_dockerfile_env())
    for name, service in _app_services().items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form"
        unknown = set(environment) - read
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"
    for name in ("workers", "user_code"):
        missing = WORKER_ENV - set(_app_services()[name]["environment"]) - image_env
        assert not missing, f"{name} lacks {sorted(missing)}"
    # The same for the Dockerfile's own project variables and the chart's user deployment.
    project_vars = {n for n in image_env if n.startswith(("MLOPS_", "DAGSTER_", "MLFLOW_"))}
    assert project_vars <= read
    assert {e["name"] for e in _user_deployment()["env"]} <= read


def test_compose_dependencies_wait_for_health_and_completion() -> None:
    """depends_on conditions name existing services that can satisfy them."""
    services = _compose_services()
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} -> {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} -> {dependency}"
            elif spec["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{name} -> {dependency}"
    for name in ("postgres", "rabbitmq", "mlflow", "user_code"):
        assert "healthcheck" in services[name], name
    # Everything of the app waits for the database, directly or through init.
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_workspace_loads_the_code_server_service() -> None:
    """The webserver's and daemon's workspace names the code-server service and its port."""
    services = _compose_services()
    code_location = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    location_name = code_location["tool"]["dg"]["project"]["code_location_name"]
    for name in ("webserver", "daemon"):
        argv = _argv(services[name]["command"])
        workspace_path = _option(argv, "-w", "--workspace")
        (source,) = [
            mount.split(":")[0]
            for mount in services[name]["volumes"]
            if mount.split(":")[1] == workspace_path
        ]
        workspace = _load(COMPOSE.parent / source)
        (entry,) = workspace["load_from"]
        grpc = entry["grpc_server"]
        server = services[grpc["host"]]
        server_argv = _argv(server["command"])
        assert server_argv[:3] == ["dagster", "code-server", "start"]
        assert _option(server_argv, "-h", "--host") == "0.0.0.0"
        assert int(_option(server_argv, "-p", "--port")) == grpc["port"]
        assert _option(server_argv, "-m", "--module-name") == "mlops_assets.definitions"
        assert grpc["location_name"] == location_name


def test_dockerfile_installs_the_lock_and_runs_unprivileged() -> None:
    """Pinned base, locked installs (dependencies first), no root at run time."""
    instructions = _dockerfile_instructions()
    (base,) = [args for keyword, args in instructions if keyword == "FROM"]
    image, _, tag = base.partition(":")
    assert image == "python"
    assert tag and tag != "latest" and "@" not in image
    version = re.match(r"\d+\.\d+(\.\d+)?", tag)
    assert version, f"the base tag {tag!r} names no Python version"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert version.group(0) in SpecifierSet(requires["requires-python"])

    runs = [args for keyword, args in instructions if keyword == "RUN"]
    syncs = [args for args in runs if "uv sync" in args]
    assert len(syncs) == 2
    for args in syncs:
        assert "--locked" in args.split() and "--no-dev" in args.split(), args
    for args in runs:
        if "pip install" in args:
            assert "--no-cache-dir" in args, args
            assert re.search(r"\buv==\d+\.\d+\.\d+\b", args), args
    # Layer cache: the dependency-only sync comes before the package is copied in.
    order = [f"{keyword} {args}" for keyword, args in instructions]
    deps_only = next(i for i, line in enumerate(order) if "--no-install-project" in line)
    package_copy = next(i for i, line in enumerate(order) if re.match(r"COPY .*mlops_assets", line))
    assert order[deps_only - 1].startswith("COPY pyproject.toml uv.lock")
    assert deps_only < package_copy

    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}

    env = _dockerfile_env()
    assert env["MLOPS_ENV"] == "production"
    assert env["MLOPS_DATA_DIR"] == "/data"
    instance_copy = ["deploy/production/dagster.yaml", f"{env['DAGSTER_HOME']}/dagster.yaml"]
    assert any(
        keyword == "COPY" and args.split()[-2:] == instance_copy for keyword, args in instructions
    )
    cmd = _dockerfile_cmd()
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert _option(cmd, "-m") == "mlops_assets.definitions"
    exposed = [args for keyword, args in instructions if keyword == "EXPOSE"]
    assert exposed == [_option(cmd, "-p")]


def test_dockerfile_copies_only_what_the_context_sends() -> None:
    """Every COPY source exists and is not excluded by .dockerignore (the context is the root)."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", ".git", "data"} <= set(patterns)
    sources = [
        source
        for keyword, args in _dockerfile_instructions()
        if keyword == "COPY"
        for source in [arg for arg in args.split() if not arg.startswith("--")][:-1]
    ]
    assert "uv.lock" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        excluded = [
            pattern
            for pattern in patterns
            if fnmatch(source, pattern) or source.startswith(pattern.rstrip("/") + "/")
        ]
        assert not excluded, f"{source} is excluded by {excluded}"


def test_helm_user_deployment_serves_the_definitions_module() -> None:
    """The chart's code server loads mlops_assets.definitions; secrets stay in Secrets."""
    values = _load(HELM_VALUES)
    deployment = _user_deployment()
    args = deployment["dagsterApiGrpcArgs"]
    assert _option(args, "-m") == "mlops_assets.definitions"
    assert importlib.util.find_spec("mlops_assets.definitions") is not None
    assert values["dagster-user-deployments"]["enabled"] is True
    assert {"name": "mlops-assets-env"} in deployment["envSecrets"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["MLOPS_ENV"] == "production"
    # The data directory is a shared volume, mounted where MLOPS_DATA_DIR points.
    assert env["MLOPS_DATA_DIR"] in [mount["mountPath"] for mount in deployment["volumeMounts"]]

    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert {"name": "mlops-assets-env"} in values["runLauncher"]["config"]["k8sRunLauncher"][
        "envSecrets"
    ]
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False
    assert postgresql["postgresqlHost"]
    assert postgresql["postgresqlPassword"] == ""
    assert values["global"]["postgresqlSecretName"]
    assert values["generatePostgresqlPasswordSecret"] is False
    # The chart mounts its instance yaml in the Dagster home the image prepares.
    assert values["global"]["dagsterHome"] == _dockerfile_env()["DAGSTER_HOME"]


def test_helm_limits_match_the_production_instance() -> None:
    """The cluster queues runs and bounds pools as deploy/production/dagster.yaml does."""
    values = _load(HELM_VALUES)
    instance = _load(INSTANCE_YAML)["concurrency"]
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True
    assert coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == instance["runs"]["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == instance["runs"]["tag_concurrency_limits"]
    pools = values["concurrency"]
    assert pools["enabled"] is True
    assert pools["pools"] == {
        "granularity": instance["pools"]["granularity"],
        "defaultLimit": instance["pools"]["default_limit"],
    }
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    instance_monitoring = _load(INSTANCE_YAML)["run_monitoring"]
    assert monitoring["enabled"] is instance_monitoring["enabled"] is True
    assert monitoring["startTimeoutSeconds"] == instance_monitoring["start_timeout_seconds"]
    assert monitoring["cancelTimeoutSeconds"] == instance_monitoring["cancel_timeout_seconds"]


def test_mlflow_manifests_stay_inside_the_cluster() -> None:
    """ClusterIP only, selector matching the pods, non-root, on the project image."""
    documents = {doc["kind"]: doc for doc in _load_all(MLFLOW_MANIFESTS)}
    assert set(documents) == {"PersistentVolumeClaim", "Deployment", "Service"}
    service, deployment = documents["Service"], documents["Deployment"]
    assert service["spec"]["type"] == "ClusterIP"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = _k8s_containers()
    port_names = {port["name"] for port in container["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    assert all("hostPort" not in port for port in container["ports"])
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    image = container["image"].rpartition(":")[0]
    assert image == _user_deployment()["image"]["repository"]
    claims = {
        volume["persistentVolumeClaim"]["claimName"]
        for volume in deployment["spec"]["template"]["spec"]["volumes"]
    }
    assert claims == {documents["PersistentVolumeClaim"]["metadata"]["name"]}
