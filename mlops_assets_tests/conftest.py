"""Shared fixtures: a real landing zone, raw frames built by hand, isolated stores."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.landing import layout
from mlops_assets.ml import raw, schemas
from mlops_assets.ml.columns import WEATHER_COLUMNS
from mlops_assets.ml.features import build_month_features
from mlops_assets.runtime.locks import file_lock
from mlops_assets_tests.contract import FIRST_QUARTER, new_mlflow_store, relocate_mlflow_store


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """The folder ``name``, filled by ``build`` once per test session and shared read-only
    by every pytest-xdist worker: the first worker to ask builds it while the others wait
    (``make test``'s three workers each built their own before, 3x the cost)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's, shared
    folder = root / name
    with file_lock(root / f"{name}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed building it
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def seeded_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full NYC flights 2013 landing zone, written once per test session (read-only)."""
    return (
        built_once(
            tmp_path_factory, "seeded", lambda folder: layout.seed_landing_zone(folder / "landing")
        )
        / "landing"
    )


@pytest.fixture(scope="session")
def first_quarter_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planes and January to March 2013, landed once per session (read-only).

    Enough months for a model (trained on two, held out on the third) at a quarter of the
    year's cost: the end-to-end tests of the UI and of staleness run on it.
    """

    def land(folder: Path) -> None:
        layout.seed_landing_zone(folder / "landing", FIRST_QUARTER[-1])

    return built_once(tmp_path_factory, "first_quarter", land) / "landing"


@pytest.fixture(scope="session")
def january_features(seeded_landing: Path) -> pd.DataFrame:
    """January 2013's real feature rows, built once per session (do not modify)."""
    read = raw.read_raw_csv
    features, _ = build_month_features(
        "2013-01",
        read(layout.monthly_file(seeded_landing, "flights", "2013-01"), raw.FLIGHTS_SCHEMA),
        read(layout.monthly_file(seeded_landing, "weather", "2013-01"), raw.WEATHER_SCHEMA),
        read(seeded_landing / layout.PLANES_FILE, raw.PLANES_SCHEMA),
    )
    return features


@pytest.fixture(scope="session")
def mlflow_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its tables made, once per test session (read-only).

    MLflow makes and migrates the tables of a new store (~3 s); a copy of this one opens as
    a new empty store in milliseconds.
    """

    def make(folder: Path) -> None:
        from mlflow import MlflowClient

        MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()

    return built_once(tmp_path_factory, "mlflow_template", make) / "mlflow.db"


@pytest.fixture
def project_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_store_template: Path
) -> Iterator[Path]:
    """A fresh data dir, MLflow SQLite store and Dagster home, as the product resolves them."""
    data = tmp_path / "data"
    data.mkdir()
    store = new_mlflow_store(mlflow_store_template, data / "mlflow.db")
    monkeypatch.setenv("MLOPS_DATA_DIR", str(data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield data


@pytest.fixture
def instance(project_env: Path) -> Iterator[dg.DagsterInstance]:
    """A persistent Dagster instance under the test's DAGSTER_HOME."""
    with dg.instance_for_test(temp_dir=str(project_env.parent / "dagster_home")) as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def ingested_first_quarter(
    tmp_path_factory: pytest.TempPathFactory,
    first_quarter_landing: Path,
    mlflow_store_template: Path,
) -> Path:
    """A project with January to March landed and ingested (raw assets and features, as
    ``month_job`` stores them), once per test session: ``data/`` and ``dagster_home/``, read
    only; :func:`first_quarter_instance` gives each test a copy."""

    def ingest(root: Path) -> None:
        from mlops_assets import definitions
        from mlops_assets.cli import rebuild

        data, home = root / "data", root / "dagster_home"
        data.mkdir()
        home.mkdir()
        shutil.copytree(first_quarter_landing, data / "landing")
        store = new_mlflow_store(mlflow_store_template, data / "mlflow.db")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLOPS_DATA_DIR", str(data))
            patch.setenv("MLFLOW_TRACKING_URI", store)
            patch.setenv("DAGSTER_HOME", str(home))
            with dg.instance_for_test(temp_dir=str(home)) as instance:
                rebuild.ingest(definitions.defs, instance, data / "landing")

    return built_once(tmp_path_factory, "ingested_first_quarter", ingest)


@pytest.fixture
def first_quarter_instance(
    project_env: Path, ingested_first_quarter: Path
) -> Iterator[dg.DagsterInstance]:
    """The test's project (``project_env``) holding a copy of :func:`ingested_first_quarter`,
    and its Dagster instance: as after ``mlops-assets seed`` and the months' runs."""
    home = project_env.parent / "dagster_home"
    copy_ingested_first_quarter(ingested_first_quarter, project_env, home)
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


def copy_ingested_first_quarter(ingested: Path, data: Path, home: Path) -> dict[str, str]:
    """Copy :func:`ingested_first_quarter` (its ``ingested`` folder) into a project's data
    dir and Dagster home (made if missing): a writable first quarter, ingested.

    Returns:
        The environment the product finds the copy by (data dir, MLflow store, Dagster home).
    """
    shutil.copytree(ingested / "dagster_home", home, dirs_exist_ok=True)
    shutil.copytree(ingested / "data", data, dirs_exist_ok=True)
    # The MLflow store names its artifact folders by absolute path: move them with the copy.
    relocate_mlflow_store(data / "mlflow.db", ingested / "data", data)
    return {
        "MLOPS_DATA_DIR": str(data),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
        "DAGSTER_HOME": str(home),
    }


def raw_flight(**values: object) -> dict[str, object]:
    """One raw flight row in the feed's schema; unspecified columns get plausible values."""
    row: dict[str, object] = {
        "year": 2013,
        "month": 1,
        "day": 1,
        "dep_time": None,
        "sched_dep_time": 0,
        "dep_delay": 0.0,
        "arr_time": None,
        "sched_arr_time": 0,
        "arr_delay": 0.0,
        "carrier": "UA",
        "flight": 1,
        "tailnum": "N1",
        "origin": "EWR",
        "dest": "ORD",
        "air_time": 100.0,
        "distance": 719,
        "hour": 5,
        "minute": 0,
        "time_hour": "2013-01-01T10:00:00Z",
    }
    row.update(values)
    return row


def raw_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Hand-made rows typed like raw assets (UTC ``time_hour``)."""
    frame = pd.DataFrame(rows)
    if "time_hour" in frame:
        frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    return frame


def typed_flights(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Hand-made raw flight rows in the dtypes the raw_flights schema declares."""
    frame = raw_frame(rows)
    types = {c: t for c, t in schemas.RAW_FLIGHTS.dtypes.items() if c != "time_hour"}
    return frame.astype({c: str(t) for c, t in types.items()})


def weather_row(origin: str, time_hour: str, **values: float) -> dict[str, object]:
    """One hourly observation; every measure defaults to a value derived from the hour."""
    row: dict[str, object] = {"origin": origin, "time_hour": time_hour}
    hour = pd.Timestamp(time_hour).hour
    for column in WEATHER_COLUMNS:
        row[column] = float(hour)
    row.update(values)
    return row


PLANES = pd.DataFrame(
    {
        "tailnum": ["N1", "N2"],
        "year": [2003.0, 2010.0],
        "type": ["Fixed wing multi engine"] * 2,
        "manufacturer": ["BOEING", "EMBRAER"],
        "model": ["737-824", "EMB-145XR"],
        "engines": [2, 2],
        "seats": [149, 55],
        "speed": [None, None],
        "engine": ["Turbo-fan"] * 2,
    }
)


LONGEST_FIRST = (
    "test_ui.py",
    "test_landing_sensor.py",
    "test_distributed.py",
    "test_outage.py",
    "test_bad_input.py",
    "test_promotion.py",
    "test_pipeline.py",
    "test_gate.py",
    "test_features.py",
    "test_versions.py",
    "test_drift.py",
    "test_dagster_mlflow_interop.py",
    "test_process.py",
    "test_mlflow_tracking.py",
    "test_notifier.py",
    "test_reproduce.py",
    "test_candidates.py",
)
"""The files that take longest (as ``--durations`` lists them), longest first."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest files first: ``make test`` gives whole files to three workers
    (``--dist loadfile --no-loadscope-reorder``), which then finish at about the same time
    instead of two waiting for the third's long file at the end."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file, and of the other files, stays
