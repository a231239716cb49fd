"""The local stack as users start it (``dagster dev`` + ``mlflow server``), for UI tests.

Each server runs in its own session (process group) so that stopping it reaches every
process it spawned (webserver, daemon, code servers, gunicorn workers): SIGTERM to the
group, then SIGKILL to whatever is left. ``dagster dev`` launched from a non-interactive
shell otherwise ignores the signal and leaves its children running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_assets.defs.shared.partitions import Batch, batch_target
from mlops_assets.runtime.tracking_server import LEAN_SERVER_ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll ``check`` until it returns True; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    """Whether ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST a GraphQL query to Dagster's webserver and return its ``data`` (errors raise)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:  # the body names the GraphQL error
        raise RuntimeError(f"GraphQL HTTP {error.code}: {error.read()[:2000]!r}") from error
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return dict(answer["data"])


@dataclass
class Server:
    """One server process group and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 20.0, crash: bool = False) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace`` seconds.

        Args:
            grace: Seconds each signal is given.
            crash: SIGKILL at once, as when the machine or the process dies.

        Raises:
            AssertionError: When a process of the group survives SIGKILL.
        """
        group = self.process.pid  # start_new_session: the group id is the leader's pid

        def stopped() -> bool:
            self.process.poll()  # reap the leader, else it lingers as a zombie
            return not group_members(group)

        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGCONT)  # a paused group cannot act on SIGTERM
        for sig in (signal.SIGKILL,) if crash else (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                wait_until(stopped, grace, f"{self.name} to stop", interval=0.2)
                break
            except TimeoutError:
                continue
        self.process.wait(timeout=grace)
        if left := group_members(group):
            raise AssertionError(f"{self.name}: processes {left} survived SIGKILL")

    def pause(self) -> None:
        """Freeze every process of the group (SIGSTOP): connections wait, nothing answers."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused group run again (SIGCONT)."""
        os.killpg(self.process.pid, signal.SIGCONT)


def _live_processes() -> Iterator[tuple[Path, int]]:
    """Each live (not zombie) process other than this one: its /proc folder and its group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            yield entry, int(fields[2])


def group_members(group: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    return [int(entry.name) for entry, pgrp in _live_processes() if pgrp == group]


def processes_using(marker: str) -> list[int]:
    """Pids of live processes whose environment or command line mentions ``marker``."""
    found = []
    for entry, _ in _live_processes():
        try:
            blob = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(entry.name))
    return found


@dataclass
class LocalStack:
    """Where the running stack lives."""

    dagster_url: str
    mlflow_url: str
    env: dict[str, str]
    data_dir: Path
    dagster_home: Path


def start_server(name: str, command: list[str], env: dict[str, str], logs: Path) -> Server:
    """Start ``command`` in a session of its own (see :class:`Server`), logging to
    ``<logs>/<name>.log``."""
    log = logs / f"{name}.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, log)


def code_location_loaded(dagster_url: str) -> bool:
    try:
        data = graphql(
            dagster_url,
            "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus "
            "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
        )
    except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError):
        return False
    entries = data["workspaceOrError"].get("locationEntries", [])
    for entry in entries:
        if (error := entry["locationOrLoadError"] or {}).get("__typename") == "PythonError":
            raise RuntimeError(f"the code location failed to load: {error['message']}")
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


@contextmanager
def local_stack(
    root: Path, landing: Path, mlflow_env: Mapping[str, str] = LEAN_SERVER_ENVIRONMENT
) -> Iterator[LocalStack]:
    """Start MLflow and ``dagster dev`` on free loopback ports with stores under ``root``.

    ``landing`` is linked in as the landing zone; ``mlflow_env`` is what the MLflow server's
    environment adds (``make run``'s by default). Every process is stopped on exit, and the
    block fails if any process that used this stack's Dagster home is still alive.
    """
    data = root / "data"
    data.mkdir(parents=True)
    (data / "landing").symlink_to(landing)
    home = root / "dagster_home"
    logs = root / "logs"
    logs.mkdir()
    dagster_port, mlflow_port = free_port(), free_port()
    dagster_url = f"http://127.0.0.1:{dagster_port}"
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    env = {
        **os.environ,
        "MLOPS_DATA_DIR": str(data),
        "DAGSTER_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
        "MLOPS_DAGSTER_UI_URL": dagster_url,
        "MLOPS_MLFLOW_UI_URL": mlflow_url,
    }
    for command in (["init-instance", "--home", str(home)], ["register-months"]):
        subprocess.run(
            [str(BIN / "mlops-assets"), *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    servers = [
        start_server(
            "mlflow",
            mlflow_server_command(mlflow_port, env["MLFLOW_TRACKING_URI"], data / "mlartifacts"),
            {**env, **mlflow_env},
            logs,
        )
    ]
    try:
        # Both start at once: dagster dev needs MLflow only when a run logs to it.
        servers.append(
            start_server(
                "dagster",
                [
                    str(BIN / "dagster"),
                    "dev",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(dagster_port),
                    "-w",
                    "workspace.yaml",
                ],
                env,
                logs,
            )
        )
        wait_until(lambda: http_ok(f"{mlflow_url}/health"), 120, "the MLflow server")
        wait_until(lambda: code_location_loaded(dagster_url), 180, "dagster dev")
        yield LocalStack(dagster_url, mlflow_url, env, data, home)
    except BaseException as error:
        error.add_note("\n".join(f"--- {s.name} log ---\n{s.tail()}" for s in servers))
        raise
    finally:
        for server in reversed(servers):
            server.stop()
    left = processes_using(str(home)) + processes_using(str(data))
    if left:
        raise AssertionError(f"processes left running after the stack stopped: {left}")


def job_command(job: str, config: Path | None = None, months: Batch | None = None) -> list[str]:
    """``dagster job execute`` of one of the project's jobs: a run in a process of its own,
    as the run launcher starts one (with ``config`` as run config, on the batch ``months``:
    a month's partition, or a range of months as a backfill runs them)."""
    command = [str(BIN / "dagster"), "job", "execute", "-m", "mlops_assets.definitions"]
    command += ["-a", "defs", "-j", job]
    if config is not None:
        command += ["-c", str(config)]
    if months is not None:
        partition_key, tags = batch_target(months)
        command += [
            "--tags",
            json.dumps({"dagster/partition": partition_key} if partition_key else tags),
        ]
    return command


def start_tracking_server(
    port: int, backend_store_uri: str, root: Path, env: dict[str, str]
) -> Server:
    """``mlops-assets tracking-server`` (the production profile's) on ``port``, its artifacts
    under ``root/artifacts``, its log under ``root/logs``; returns once it answers."""
    command = [str(BIN / "mlops-assets"), "tracking-server", "--port", str(port)]
    command += ["--artifacts-destination", str(root / "artifacts")]
    (root / "logs").mkdir(exist_ok=True)
    server_env = {**env, "MLFLOW_BACKEND_STORE_URI": backend_store_uri}
    server = start_server("tracking-server", command, server_env, root / "logs")
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), 180, "the tracking server")
    except BaseException:
        server.stop()
        raise
    return server


def start_celery_worker(name: str, env: dict[str, str], logs: Path) -> Server:
    """One Celery worker of the production profile (``$DAGSTER_HOME`` from ``env``), as
    ``mlops-assets workers`` starts each; returns once it is ready for tasks."""
    from mlops_assets.runtime import workers

    config = workers.write_worker_config(Path(env["DAGSTER_HOME"]))
    worker = start_server(
        name, workers.worker_command(config, name), workers.worker_environment(env), logs
    )

    def ready() -> bool:
        if worker.process.poll() is not None:
            raise RuntimeError(f"{name} exited: {worker.tail()}")
        return " ready." in worker.log.read_text(errors="replace")

    try:
        wait_until(ready, 120, f"{name} ready")
    except BaseException:
        worker.stop()
        raise
    return worker


def mlflow_server_command(port: int, backend_store_uri: str, artifacts: Path) -> list[str]:
    """``mlflow server`` as ``make run`` starts it, on ``port`` of the loopback interface."""
    return [
        str(BIN / "mlflow"),
        "server",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--default-artifact-root",
        str(artifacts),
    ]


class MlflowServer:
    """A real ``mlflow server`` on a fixed loopback port, that can be stopped and started again.

    Its SQLite store and artifacts live under ``root``; every start appends to one log.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store_uri = f"sqlite:///{root / 'mlflow.db'}"
        self._server: Server | None = None
        root.mkdir(parents=True, exist_ok=True)
        self._env = {**os.environ, **LEAN_SERVER_ENVIRONMENT}

    @property
    def running(self) -> bool:
        """Whether a server process was started and has not been stopped."""
        return self._server is not None

    def start(self, wait: bool = True) -> None:
        """Start the server on its port; with ``wait``, return once it answers /health."""
        assert self._server is None, "the MLflow server is already running"
        command = mlflow_server_command(self.port, self.store_uri, self.root / "artifacts")
        self._server = start_server("mlflow", command, self._env, self.root)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 240) -> None:
        """Wait until the server answers /health (fail with its log if it exits)."""
        server = self._server
        assert server is not None, "the MLflow server was not started"

        def ready() -> bool:
            if server.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{server.tail()}")
            return http_ok(f"{self.url}/health")

        wait_until(ready, timeout, f"the MLflow server on {self.url}", interval=0.2)

    def stop(self, crash: bool = False) -> None:
        """Stop every process of the server (SIGKILL at once with ``crash``)."""
        if self._server is not None:
            server, self._server = self._server, None
            server.stop(crash=crash)

    def pause(self) -> None:
        """Freeze the server: requests are accepted by the kernel, but nothing answers."""
        assert self._server is not None
        self._server.pause()

    def resume(self) -> None:
        """Let a paused server answer again."""
        assert self._server is not None
        self._server.resume()

    def tail(self, lines: int = 40) -> str:
        """The end of the server's log."""
        log = self.root / "mlflow.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def mlflow_server(root: Path) -> Iterator[MlflowServer]:
    """A started :class:`MlflowServer`; on exit it is stopped, and its log is added to any
    failure. Fails if any process that used its store is left running."""
    server = MlflowServer(root)
    try:
        server.start()
        yield server
    except BaseException as error:
        error.add_note(f"--- mlflow server log ---\n{server.tail()}")
        raise
    finally:
        server.stop()
    if left := processes_using(server.store_uri):
        raise AssertionError(f"processes of the MLflow server left running: {left}")


@contextmanager
def _serving(
    name: str,
    command: Callable[[int], list[str]],
    env: dict[str, str],
    logs: Path,
    ready: Callable[[str], bool],
) -> Iterator[str]:
    """Start ``command(port)`` on a free loopback port, wait until ``ready(url)``, yield the
    URL; its log is added to any failure, and its process group is stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs.mkdir(parents=True, exist_ok=True)
    server = start_server(f"{name}-{port}", command(port), env, logs)

    def started() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"{name} exited with {server.process.returncode}")
        return ready(url)

    try:
        wait_until(started, 120, name)
        yield url
    except BaseException as error:
        error.add_note(f"--- {name} log ---\n{server.tail()}")
        raise
    finally:
        server.stop()


def _dagster_ui(
    name: str, program: list[str], module: str, env: dict[str, str], logs: Path
) -> AbstractContextManager[str]:
    """``program`` (a Dagster webserver command) for ``module`` on a free loopback port, ready
    once its code location has loaded; yields its URL."""
    return _serving(
        name,
        lambda port: [*program, "-h", "127.0.0.1", "-p", str(port), "-m", module],
        env,
        logs,
        code_location_loaded,
    )


def webserver(module: str, env: dict[str, str], logs: Path) -> AbstractContextManager[str]:
    """``dagster-webserver`` for ``module`` on a free loopback port; yields its URL."""
    return _dagster_ui("webserver", [str(BIN / "dagster-webserver")], module, env, logs)


def dagster_dev(module: str, env: dict[str, str], logs: Path) -> AbstractContextManager[str]:
    """``dagster dev`` (webserver and daemon) for ``module`` on a free loopback port; yields
    its URL."""
    return _dagster_ui("dagster-dev", [str(BIN / "dagster"), "dev"], module, env, logs)


def model_server(model_uri: str, env: dict[str, str], logs: Path) -> AbstractContextManager[str]:
    """``mlflow models serve`` for ``model_uri`` on a free loopback port; yields its URL."""
    return _serving(
        "model-server",
        lambda port: [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        # mlflow starts uvicorn by name: the virtualenv's bin must be on PATH, as after
        # `. .venv/bin/activate` (make serve does it).
        {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"},
        logs,
        lambda url: http_ok(f"{url}/ping"),
    )
