"""What changed in the landing zone since the last look (no dagster, no pandas).

The landing protocol, enforced here:

1. A feed writes each file under a temporary name in the same folder (a name starting with
   ``.`` or ending in ``.part`` or ``.tmp``) and renames it to ``YYYY-MM.csv.gz`` (monthly
   tables) or ``planes.csv.gz`` when it is complete. Temporary names are never read.
2. A file under its final name must be a complete gzip stream; one that is not (a copy in
   progress that skipped step 1, or a truncated file) is reported and looked at again on the
   next scan, never consumed.
3. A month is consumed when both its flights and its weather files have landed.

The state kept between scans records each consumed file's size, modification time and
SHA-256. A file whose size and modification time are unchanged is not read again, so a scan
costs one directory listing plus work proportional to what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlops_assets.landing.layout import (
    MONTHLY_TABLES,
    PLANES_FILE,
    LandingError,
    is_temporary_name,
    month_input_names,
    monthly_name,
    next_month,
    parse_month,
)

STATE_VERSION = 1


@dataclass(frozen=True)
class FileState:
    """A consumed file as it was when it was consumed."""

    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class ChangedFile:
    """A landed file that is new or whose content differs from the one consumed before."""

    key: str  # e.g. "flights/2013-01.csv.gz" or "planes.csv.gz"
    table: str
    month: str | None
    sha256: str


@dataclass
class ScanResult:
    """The outcome of one scan: what to consume, what to report, and the next state."""

    changed: list[ChangedFile] = field(default_factory=list)
    state: dict[str, FileState] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    files_read: int = 0

    def months(self, table: str) -> dict[str, str]:
        """Changed months of ``table`` with their content hashes."""
        return {c.month: c.sha256 for c in self.changed if c.table == table and c.month}


def file_sha256(path: Path) -> str:
    """SHA-256 of a landed file's bytes, after checking it is complete gzip data.

    Concatenated gzip members are accepted (as ``gzip`` reads them); data after the last
    complete member, or a member cut short, is not.

    Raises:
        LandingError: When the file is not complete gzip data, naming the file.
    """
    digest = hashlib.sha256()
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                inflater.decompress(chunk)
                while inflater.eof and inflater.unused_data:
                    rest = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    inflater.decompress(rest)
    except zlib.error as error:
        raise LandingError(f"{path}: not a valid gzip file ({error})") from error
    if not inflater.eof:
        raise LandingError(f"{path}: gzip stream is incomplete (a copy in progress or truncated)")
    return digest.hexdigest()


def content_version(paths: list[Path]) -> str:
    """One SHA-256 for the content of several landed files (their names and hashes).

    It is the data version of a raw asset: unchanged files give the same version, so
    re-reading them leaves everything downstream in sync.

    Only the bytes are hashed: the reader that follows decompresses and checks them anyway.
    """

    def digest(path: Path) -> str:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    return version_of({path.name: digest(path) for path in paths})


def version_of(digests: Mapping[str, str]) -> str:
    """The :func:`content_version` of files given by name and SHA-256, without reading them."""
    lines = sorted(f"{name}:{sha}" for name, sha in digests.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def month_keys(month: str) -> list[str]:
    """State keys of a month's files: flights then weather."""
    return [monthly_name(table, month) for table in MONTHLY_TABLES]


def month_inputs(state: Mapping[str, FileState], table: str, month: str) -> list[str]:
    """State keys of the files the raw ``table`` partition of ``month`` reads (consumed ones).

    The rule is :func:`~mlops_assets.landing.layout.month_input_names`, which the raw assets
    apply to the landing zone when they read.
    """
    return month_input_names(table, month, state.__contains__)


def month_version(state: Mapping[str, FileState], table: str, month: str) -> str:
    """The data version the raw ``table`` partition of ``month`` gets from the consumed files.

    Args:
        state: Consumed files, as :func:`scan` returns them.
        table: ``flights`` or ``weather``.
        month: ``YYYY-MM``.

    Returns:
        The :func:`content_version` of the files the partition reads, from their hashes.
    """
    keys = month_inputs(state, table, month)
    return version_of({key.split("/", 1)[1]: state[key].sha256 for key in keys if key in state})


def consumed_months(state: Mapping[str, FileState]) -> list[str]:
    """The months whose files (flights and weather) have all been consumed, sorted."""
    months = {key.split("/", 1)[1][:7] for key in state if "/" in key}
    return sorted(m for m in months if all(key in state for key in month_keys(m)))


def months_to_build(result: ScanResult) -> list[str]:
    """Months whose raw partitions change with this scan.

    Args:
        result: The scan.

    Returns:
        The changed months, and the month after each of them when it has been consumed (its
        context rows come from the changed one), sorted.
    """
    changed = {c.month for c in result.changed if c.month}
    following = {
        next_month(month)
        for month in changed
        if all(key in result.state for key in month_keys(next_month(month)))
    }
    return sorted(changed | following)


@dataclass(frozen=True)
class _Landed:
    table: str
    month: str | None
    path: Path
    size: int
    mtime_ns: int


def complete_months(root: Path) -> list[str]:
    """Months whose flights and weather files have both landed under their final names.

    Files with names that are not months are skipped (the sensor reports them).
    """
    found, _ = _landed(root)
    months = [{v.month for v in found.values() if v.table == t} for t in MONTHLY_TABLES]
    return sorted(m for m in set.intersection(*months) if m)


def _landed(root: Path) -> tuple[dict[str, _Landed], list[str]]:
    """Every landed file by key, with one ``stat`` each, and the names rejected."""
    found: dict[str, _Landed] = {}
    rejected: list[str] = []
    for table in MONTHLY_TABLES:
        folder = root / table
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_temporary_name(entry.name):
                    continue
                stem = entry.name.removesuffix(".csv.gz")
                try:
                    if stem == entry.name or not entry.is_file():
                        raise LandingError("want YYYY-MM.csv.gz")
                    parse_month(stem)
                except LandingError as error:
                    rejected.append(f"{entry.path}: not a monthly file name, ignored ({error})")
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue  # removed while the scan ran
                found[f"{table}/{entry.name}"] = _Landed(
                    table, stem, Path(entry.path), stat.st_size, stat.st_mtime_ns
                )
    planes = root / PLANES_FILE
    if planes.is_file():
        stat = planes.stat()
        found[PLANES_FILE] = _Landed("planes", None, planes, stat.st_size, stat.st_mtime_ns)
    return found, rejected


def scan(root: Path, previous: Mapping[str, FileState]) -> ScanResult:
    """Compare the landing zone under ``root`` with the state of the previous scan.

    Args:
        root: The landing-zone folder.
        previous: The state returned by the previous scan (empty the first time).

    Returns:
        The new or changed files to consume, the names rejected or waiting, and the state
        to pass to the next scan. A file not consumed now keeps its previous state.
    """
    found, rejected = _landed(root)
    result = ScanResult(rejected=rejected)
    fresh: dict[str, ChangedFile] = {}
    incomplete: set[str] = set()
    for key, landed in sorted(found.items()):
        before = previous.get(key)
        if before and (before.size, before.mtime_ns) == (landed.size, landed.mtime_ns):
            result.state[key] = before
            continue
        result.files_read += 1
        try:
            sha = file_sha256(landed.path)
        except FileNotFoundError:
            continue  # removed while the scan ran
        except LandingError as error:
            result.waiting.append(f"{error}; not consumed, looked at again next time")
            incomplete.add(key)
            if before:
                result.state[key] = before
            continue
        now = FileState(landed.size, landed.mtime_ns, sha)
        if before and before.sha256 == sha:
            result.state[key] = now  # touched or re-landed with identical content
            continue
        fresh[key] = ChangedFile(key, landed.table, landed.month, sha)
        result.state[key] = now
    for key, changed in fresh.items():
        sibling = _sibling(changed)
        if sibling and (sibling not in result.state or sibling in incomplete):
            result.waiting.append(
                f"{root / key}: waiting for a complete {root / sibling} before month "
                f"{changed.month} is consumed"
            )
            if key in previous:
                result.state[key] = previous[key]
            else:
                del result.state[key]
            continue
        result.changed.append(changed)
    return result


def _sibling(changed: ChangedFile) -> str | None:
    if changed.month is None:
        return None
    other = {"flights": "weather", "weather": "flights"}[changed.table]
    return f"{other}/{changed.month}.csv.gz"


def encode_state(state: Mapping[str, FileState], pending: Sequence[str] = ()) -> str:
    """Serialise a scan state and the months still to request (the sensor's cursor)."""
    files = {key: [v.size, v.mtime_ns, v.sha256] for key, v in sorted(state.items())}
    cursor = {"version": STATE_VERSION, "files": files, "pending": sorted(pending)}
    return json.dumps(cursor, separators=(",", ":"))


def decode_pending(cursor: str | None) -> list[str]:
    """The months a cursor written by :func:`encode_state` holds back; empty for none."""
    return list(json.loads(cursor).get("pending", [])) if cursor else []


def decode_state(cursor: str | None) -> dict[str, FileState]:
    """Read a scan state written by :func:`encode_state`; empty for no cursor.

    Raises:
        ValueError: When the cursor is not a state of this version. Starting from an empty
            state instead would consume every landed file again.
    """
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
        if data["version"] != STATE_VERSION:
            raise ValueError(f"version {data['version']!r}, expected {STATE_VERSION}")
        return {key: FileState(*value) for key, value in data["files"].items()}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"landing-zone state is unreadable ({error}); reset the sensor's cursor to "
            "re-consume the whole landing zone on purpose"
        ) from error
