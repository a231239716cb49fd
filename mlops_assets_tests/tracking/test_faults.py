"""Which errors the steps retry (transient faults only, wherever they sit in the chain), and
how long a step retries through an MLflow outage."""

from __future__ import annotations

import errno
import gzip
import os
import time
from pathlib import Path

import dagster as dg
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE
from sqlalchemy.exc import OperationalError

from mlops_assets import definitions
from mlops_assets.defs.shared.policies import (
    MLFLOW_RETRY,
    longest_retry_wait,
    mlflow_outage_wait,
    mlflow_retry,
)
from mlops_assets.landing import layout
from mlops_assets.resources import MlflowTracking
from mlops_assets.runtime import settings
from mlops_assets.tracking.faults import is_transient, root_cause
from mlops_assets_tests.contract import step_failure
from mlops_assets_tests.stack import free_port


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
    layout.seed_landing_zone(project_env / "landing", "2013-01")
    instance.add_dynamic_partitions("month", ["2013-01"])
    # The month's features alone, before its raw data were ever read.
    result = definitions.defs.resolve_job_def("month_job").execute_in_process(
        instance=instance,
        partition_key="2013-01",
        asset_selection=[dg.AssetKey("flight_features")],
        raise_on_error=False,
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert result.get_step_failure_events()[0].step_key == "flight_features"
    description = step_failure(result)
    assert "input raw_flights (partition 2013-01) is not stored at " in description
    assert description.endswith(": materialize raw_flights (partition 2013-01) first")


def test_the_innermost_cause_names_what_happened() -> None:
    error = _raised_from(
        MlflowException("API request to http://127.0.0.1:5000/api/2.0/... failed with exception"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    )
    assert root_cause(error) == "ConnectionRefusedError: [Errno 111] Connection refused"


def test_the_tracking_resource_caps_mlflow_http_retries_in_its_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    tracking = MlflowTracking(http_timeout_seconds=7)
    for name in tracking.http_environment():
        monkeypatch.delenv(name, raising=False)  # restored after the test
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")  # a user's own setting
    seen: dict[str, int] = {}

    @dg.asset
    def probe(mlflow_tracking: MlflowTracking) -> None:
        seen["retries"] = MLFLOW_HTTP_REQUEST_MAX_RETRIES.get()
        seen["timeout"] = MLFLOW_HTTP_REQUEST_TIMEOUT.get()

    assert dg.materialize([probe], resources={"mlflow_tracking": tracking}).success
    assert seen == {"retries": 2, "timeout": 7}


def test_a_request_to_a_server_that_is_down_fails_within_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracking = MlflowTracking()
    for name, value in tracking.http_environment().items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with pytest.raises(MlflowException) as raised:
        MlflowClient(f"http://127.0.0.1:{free_port()}").search_experiments()
    took = time.monotonic() - started
    assert is_transient(raised.value)
    # urllib3 retries at once, then after 2 s + up to 1 s of jitter: what the resource computes.
    assert 2.0 <= took <= tracking.request_wait_seconds() + 1.0, took


def test_the_longest_outage_an_mlflow_step_retries_through() -> None:
    assert settings.MLFLOW_RETRY_DELAY_ENV not in os.environ  # the shipped policy
    assert MLFLOW_RETRY.delay == settings.DEFAULT_MLFLOW_RETRY_DELAY_S == 2.0
    assert longest_retry_wait(MLFLOW_RETRY) == 60  # 2 + 6 + 14 + 30 s, each at most +2 s
    assert mlflow_outage_wait(MlflowTracking()) == 75  # server down: 5 attempts x 3 s + 60 s
    assert mlflow_outage_wait(MlflowTracking(), hung=True) == 375  # 5 x (3 + 3 x 15 + 15) + 60
    # MLflow's own defaults (7 retries, backoff factor 2, 120 s timeout) would be 22 minutes.
    defaults = MlflowTracking(http_max_retries=7, http_backoff_factor=2, http_timeout_seconds=120)
    assert mlflow_outage_wait(defaults) > 20 * 60


@pytest.mark.parametrize("value", ["0", "-1", "two", "inf", "nan"])
def test_a_bad_mlflow_retry_delay_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(settings.MLFLOW_RETRY_DELAY_ENV, value)
    with pytest.raises(ValueError, match=f"MLOPS_MLFLOW_RETRY_DELAY_S='{value}': a number"):
        settings.mlflow_retry_delay()
    monkeypatch.setenv(settings.MLFLOW_RETRY_DELAY_ENV, "0.5")
    assert settings.mlflow_retry_delay() == 0.5
    # A half-second delay: about 0.5, 1.5, 3.5 and 7.5 s, each at most +0.5 s.
    assert longest_retry_wait(mlflow_retry(settings.mlflow_retry_delay())) == 15
