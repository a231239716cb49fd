"""Which errors the steps retry: transient faults only."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)
from sqlalchemy.exc import OperationalError

from mlops_assets.faults import is_transient


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("connection refused"),
        TimeoutError("timed out"),
        OSError(5, "Input/output error"),
        requests.exceptions.ConnectionError("Max retries exceeded"),
        OperationalError("INSERT ...", {}, Exception("database is locked")),
        MlflowException("API request failed: 503", error_code=TEMPORARILY_UNAVAILABLE),
        MlflowException("API request to http://127.0.0.1:5000 failed with exception ..."),
    ],
)
def test_transient_faults_are_retried(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory", "landing/flights/2013-13.csv.gz"),
        PermissionError(13, "Permission denied"),
        ValueError("could not convert string to float: 'abc'"),
        RuntimeError("out of memory while fitting"),
        KeyError("arr_delay"),
        OperationalError("SELECT ...", {}, Exception("no such table: runs")),
        MlflowException("Invalid name 'bad/name'", error_code=INVALID_PARAMETER_VALUE),
        MlflowException("Registered model not found", error_code=RESOURCE_DOES_NOT_EXIST),
    ],
)
def test_errors_that_would_happen_again_are_not_retried(error: BaseException) -> None:
    assert not is_transient(error)
