"""The production MLflow tracking server: PostgreSQL backend store, served artifacts, loopback.

``mlops-assets tracking-server`` runs ``mlflow server`` with:

- a PostgreSQL backend store (``MLFLOW_BACKEND_STORE_URI``), where runs, metrics, the
  registry and its aliases live (MLflow creates and migrates its tables). The server reads
  the URL from its environment, never from its command line, which any user of the machine
  can read (``ps``), password included;
- ``--serve-artifacts`` with ``--artifacts-destination`` (``MLFLOW_ARTIFACTS_DESTINATION``, a
  folder or an object-store URI such as ``s3://bucket/mlflow``): clients upload and download
  artifacts through the server, so runs and workers need no access to the store itself;
- ``--host 127.0.0.1`` unless told otherwise, and ``--allowed-hosts`` (the Host headers it
  answers, against DNS rebinding): the loopback names unless ``MLFLOW_SERVER_ALLOWED_HOSTS``
  names the shared ones.
"""

from __future__ import annotations

import sys
from pathlib import Path


def server_command(
    artifacts_destination: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    allowed_hosts: str | None = None,
    workers: int = 1,
) -> list[str]:
    """The ``mlflow server`` command line; the backend store is in :func:`server_environment`."""
    loopback = f"127.0.0.1:{port},localhost:{port},127.0.0.1,localhost"
    return [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts_destination,
        "--allowed-hosts",
        allowed_hosts or loopback,
    ]


LEAN_SERVER_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""Every ``mlflow server`` this project starts runs without MLflow 3's job runner.

The runner (a huey consumer and its workers, for GenAI jobs such as scorers and prompt
optimization) is on by default and idle here costs ~1.9 GB of resident memory in 8
processes; nothing in this project submits a job. ``make run`` sets the same variable.
"""


def server_environment(backend_store_uri: str) -> dict[str, str]:
    """What the server's environment adds: its PostgreSQL backend store, no job runner.

    Raises:
        ValueError: When the URL is not a PostgreSQL one (it names the scheme found).
    """
    if not backend_store_uri.startswith(("postgresql://", "postgresql+psycopg2://")):
        scheme = backend_store_uri.split(":", 1)[0]
        raise ValueError(
            f"backend store of scheme {scheme!r}: the production tracking server keeps its "
            "runs and registry in PostgreSQL (postgresql://user:password@host:5432/mlflow)"
        )
    return {"MLFLOW_BACKEND_STORE_URI": backend_store_uri, **LEAN_SERVER_ENVIRONMENT}
