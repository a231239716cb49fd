"""Which errors are worth retrying (no dagster).

Transient faults of the file system, the network, the databases and the MLflow server are;
errors that would happen again (bad data, bad configuration, bugs) are not.
"""

from __future__ import annotations

PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
TRANSIENT_MLFLOW_CODES = frozenset(
    {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}
)
TRANSIENT_DATABASE_MESSAGES = ("database is locked", "could not connect", "connection refused")


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same work later may succeed.

    Args:
        error: The exception a step raised.

    Returns:
        True for connection failures, timeouts, I/O errors other than missing or forbidden
        paths, locked or unreachable databases and MLflow server errors (5xx, unreachable);
        False for everything else (bad data, bad configuration, bugs).
    """
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    if isinstance(error, PERMANENT_OS_ERRORS):
        return False
    if isinstance(error, OSError | TimeoutError):  # includes ConnectionError and requests' errors
        return True
    if isinstance(error, OperationalError):
        return any(text in str(error).lower() for text in TRANSIENT_DATABASE_MESSAGES)
    if isinstance(error, MlflowException):
        return error.error_code in TRANSIENT_MLFLOW_CODES
    return False
