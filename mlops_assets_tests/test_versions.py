"""Code and data versions: what the UI marks unsynced after a code or data change.

Staleness is read the way the UI reads it ("Materialize unsynced"): from Dagster's GraphQL
API, served by ``dagster-webserver`` over the test's instance.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets import definitions, landing
from mlops_assets_tests.contract import ASSET_KEYS, FAST_RUN_CONFIG
from mlops_assets_tests.stack import graphql, webserver

pytestmark = pytest.mark.e2e


@dataclass
class Project:
    """A materialized project and webservers over its instance (current and bumped code)."""

    landing: Path
    instance: dg.DagsterInstance
    current_url: str
    bumped_url: str


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, seeded_landing: Path) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("versions")
    data, home = root / "data", root / "home"
    shutil.copytree(seeded_landing, data / "landing")  # writable: a test re-lands a file
    home.mkdir()
    env = {
        "MLOPS_DATA_DIR": str(data),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
        "DAGSTER_HOME": str(home),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            job = definitions.defs.resolve_job_def("training_job")
            assert job.execute_in_process(instance=instance, run_config=FAST_RUN_CONFIG).success
            server_env = {**os.environ, **env}
            with (
                webserver("mlops_assets.definitions", server_env, root / "logs") as current,
                webserver(
                    "mlops_assets_tests.bumped_code_location", server_env, root / "logs"
                ) as bumped,
            ):
                yield Project(data / "landing", instance, current, bumped)


def _stale(url: str) -> dict[str, str]:
    data = graphql(url, "{ assetNodes { assetKey { path } staleStatus } }")
    return {"/".join(n["assetKey"]["path"]): n["staleStatus"] for n in data["assetNodes"]}


def _unsynced(url: str) -> set[str]:
    return {key for key, status in _stale(url).items() if status != "FRESH"}


def _materialize(defs: dg.Definitions, project: Project, keys: set[str]) -> None:
    job = defs.resolve_job_def("training_job")
    result = job.execute_in_process(
        instance=project.instance,
        asset_selection=[dg.AssetKey(key) for key in sorted(keys)],
        run_config={"ops": {k: v for k, v in FAST_RUN_CONFIG["ops"].items() if k in keys}},
    )
    assert result.success


def _materialize_unsynced_until_in_sync(
    defs: dg.Definitions, project: Project, url: str
) -> list[set[str]]:
    """Do what "Materialize unsynced" does, as often as it takes; returns each round's set."""
    rounds: list[set[str]] = []
    while unsynced := _unsynced(url):
        assert len(rounds) < len(ASSET_KEYS), f"never in sync: {rounds}"
        rounds.append(unsynced)
        _materialize(defs, project, unsynced)
    return rounds


def test_rematerializing_unchanged_raw_data_leaves_downstream_in_sync(project: Project) -> None:
    _materialize(definitions.defs, project, {"raw_flights", "raw_weather", "raw_planes"})
    assert _unsynced(project.current_url) == set()


def test_a_changed_landing_file_makes_the_features_and_model_unsynced(project: Project) -> None:
    december = landing.monthly_file(project.landing, "flights", "2013-12")
    rows = gzip.decompress(december.read_bytes()).decode().splitlines()
    landing.land_bytes(december, gzip.compress("\n".join(rows[:-100]).encode() + b"\n"), force=True)
    _materialize(definitions.defs, project, {"raw_flights"})
    rounds = _materialize_unsynced_until_in_sync(definitions.defs, project, project.current_url)
    assert rounds == [
        {"flight_features"},
        {"trained_model", "model_evaluation"},
        {"registered_model"},
    ]


def test_a_code_version_bump_makes_the_changed_asset_and_then_its_downstream_unsynced(
    project: Project,
) -> None:
    """Last: it materializes with the bumped code, which the current code then sees as old."""
    from mlops_assets_tests import bumped_code_location

    assert _unsynced(project.current_url) == set()
    data = graphql(
        project.bumped_url,
        '{ assetNodeOrError(assetKey: {path: ["flight_features"]}) { ... on AssetNode {'
        " staleCauses { category reason } } } }",
    )
    assert {cause["category"] for cause in data["assetNodeOrError"]["staleCauses"]} == {"CODE"}
    rounds = _materialize_unsynced_until_in_sync(
        bumped_code_location.defs, project, project.bumped_url
    )
    # Dagster marks the asset whose code changed; its downstream follow once it has a new
    # data version. No raw asset is ever recomputed.
    assert rounds == [
        {"flight_features"},
        {"trained_model", "model_evaluation"},
        {"registered_model"},
    ]
