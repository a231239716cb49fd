"""Which errors are worth retrying (no dagster).

Transient faults are: a connection refused, reset or timed out (to the MLflow server, a
database or an object store), a locked or unreachable database, and I/O errors whose errno
says "try again". Everything else would happen again (bad data, bad configuration, a
missing file or table, a full disk, a bug) and is not retried. MLflow and SQLAlchemy wrap
the errors they meet, so the whole chain of causes is examined, not only the outer error.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

TRANSIENT_ERRNOS = frozenset(
    {
        errno.EAGAIN,
        errno.EBUSY,
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    }
)
TRANSIENT_DATABASE_MESSAGES = (
    "database is locked",
    "could not connect to server",
    "connection refused",
    "server closed the connection unexpectedly",
    "connection timed out",
)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transient(error: BaseException) -> bool:
    import requests
    from sqlalchemy.exc import OperationalError
    from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError

    if isinstance(error, ConnectionError | TimeoutError):
        return True
    if isinstance(
        error,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | NewConnectionError
        | ProtocolError
        | ReadTimeoutError,
    ):
        return True
    if isinstance(error, OperationalError):
        return any(text in str(error).lower() for text in TRANSIENT_DATABASE_MESSAGES)
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same work later may succeed.

    Args:
        error: The exception a step raised.

    Returns:
        True when the error, or any error it was raised from, is a transient fault.
    """
    return any(_transient(link) for link in _chain(error))


def root_cause(error: BaseException) -> str:
    """The innermost error of the chain, as ``Type: message`` (e.g. the refused connection).

    Args:
        error: The exception a step raised.

    Returns:
        One line naming what actually happened, without the wrappers' repetitions.
    """
    *_, innermost = _chain(error)
    text = str(innermost).strip().splitlines()
    return f"{type(innermost).__name__}: {text[0] if text else ''}".rstrip(": ")
