"""Which errors the steps retry: transient faults only, wherever they sit in the chain."""

from __future__ import annotations

import errno
import gzip
from pathlib import Path

import dagster as dg
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE
from sqlalchemy.exc import OperationalError

from mlops_assets import definitions, landing
from mlops_assets.faults import is_transient
from mlops_assets_tests.contract import step_failure


def _raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException:  # noqa: BLE001  (builds the implicit chain MLflow builds)
            raise outer  # noqa: B904
    except BaseException as chained:  # noqa: BLE001
        return chained


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("connection refused"),
        TimeoutError("timed out"),
        OSError(errno.ECONNRESET, "Connection reset by peer"),
        requests.exceptions.ConnectionError("Max retries exceeded"),
        OperationalError("INSERT ...", {}, Exception("database is locked")),
        # MLflow's REST client: "API request to ... failed with exception ...", chained
        _raised_from(
            MlflowException("API request to http://127.0.0.1:5000 failed with exception ..."),
            requests.exceptions.ConnectionError("Max retries exceeded"),
        ),
        # MLflow's SQL store wraps a locked SQLite database
        _raised_from(
            MlflowException("(sqlite3.OperationalError) ...", error_code=TEMPORARILY_UNAVAILABLE),
            OperationalError("UPDATE runs ...", {}, Exception("database is locked")),
        ),
    ],
)
def test_transient_faults_are_retried(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory", "landing/flights/2013-13.csv.gz"),
        PermissionError(13, "Permission denied"),
        OSError(errno.ENOSPC, "No space left on device"),
        gzip.BadGzipFile("Not a gzipped file (b'ab')"),
        requests.exceptions.InvalidURL("Invalid URL 'http://'"),
        ValueError("could not convert string to float: 'abc'"),
        RuntimeError("out of memory while fitting"),
        OperationalError("SELECT ...", {}, Exception("no such table: runs")),
        MlflowException("Invalid name 'bad/name'", error_code=INVALID_PARAMETER_VALUE),
        # MLflow's SQL store wraps a missing table the same way as a locked database
        _raised_from(
            MlflowException("(sqlite3.OperationalError) ...", error_code=TEMPORARILY_UNAVAILABLE),
            OperationalError("SELECT ...", {}, Exception("no such table: runs")),
        ),
        MlflowException("API request to http://127.0.0.1:5000 failed: 500 bad signature"),
    ],
)
def test_errors_that_would_happen_again_are_not_retried(error: BaseException) -> None:
    assert not is_transient(error)


def test_an_input_never_materialized_fails_once_and_names_it(
    project_env: Path, instance: dg.DagsterInstance
) -> None:
    landing.seed_landing_zone(project_env / "landing", "2013-01")
    instance.add_dynamic_partitions("month", ["2013-01"])
    result = definitions.defs.resolve_job_def("month_job").execute_in_process(
        instance=instance, partition_key="2013-01", raise_on_error=False
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert result.get_step_failure_events()[0].step_key == "flight_features"
    description = step_failure(result)
    assert "input raw_planes is not stored at " in description
    assert description.endswith(": materialize raw_planes first")
