"""Code and data versions: what the UI marks unsynced after a code or data change.

Staleness is read the way the UI reads it ("Materialize unsynced"): from Dagster's GraphQL
API, served by ``dagster-webserver`` over the test's instance.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets import definitions
from mlops_assets.cli import rebuild
from mlops_assets.defs.shared.partitions import month_ranges, range_tags
from mlops_assets.landing import layout
from mlops_assets_tests.conftest import copy_ingested_first_quarter
from mlops_assets_tests.contract import ASSET_KEYS, FAST_RUN_CONFIG, FIRST_QUARTER
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
def project(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_first_quarter: Path,
) -> Iterator[Project]:
    """January to March materialized, and webservers over the instance."""
    root = tmp_path_factory.mktemp("versions")
    data, home = root / "data", root / "home"
    # A writable copy (a test re-lands a file) of the months as ingested.
    env = copy_ingested_first_quarter(ingested_first_quarter, data, home)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            # Then the rest of a rebuild: the model, and the scoring of every month.
            model = definitions.defs.resolve_job_def("retrain_job").execute_in_process(
                instance=instance, run_config=FAST_RUN_CONFIG
            )
            assert model.success
            assert rebuild.score(definitions.defs, instance)
            server_env = {**os.environ, **env}
            with (
                webserver("mlops_assets.definitions", server_env, root / "logs") as current,
                webserver(
                    "mlops_assets_tests.bumped_code_location", server_env, root / "logs"
                ) as bumped,
            ):
                yield Project(data / "landing", instance, current, bumped)


Unsynced = set[tuple[str, str | None]]
"""(asset, month) pairs the UI shows as unsynced; the month is None for unpartitioned assets."""

JOB_OF = {
    "raw_planes": "month_job",
    "raw_flights": "month_job",
    "raw_weather": "month_job",
    "flight_delay_predictions": "scoring_job",
    "feature_drift": "scoring_job",
}


def _unsynced(url: str) -> Unsynced:
    nodes = graphql(url, "{ assetNodes { assetKey { path } isPartitioned staleStatus } }")
    found: Unsynced = set()
    for node in nodes["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        if not node["isPartitioned"]:
            if node["staleStatus"] != "FRESH":
                found.add((key, None))
            continue
        data = graphql(
            url,
            "query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {"
            " ... on AssetNode { partitionKeys staleStatusByPartition } } }",
            {"path": node["assetKey"]["path"]},
        )["assetNodeOrError"]
        statuses = zip(data["partitionKeys"], data["staleStatusByPartition"], strict=True)
        found |= {(key, month) for month, status in statuses if status != "FRESH"}
    return found


def _materialize(defs: dg.Definitions, project: Project, targets: Unsynced) -> None:
    """Materialize (asset, month) pairs as a UI launch of them does: one run per job and batch.

    The months of a job that need the same assets run in the batches the backfill policy cuts
    (``month_ranges``: consecutive months, at most ``MONTHS_PER_RUN`` per run).
    """
    by_run: dict[tuple[str, str | None], list[str]] = {}
    for key, month in sorted(targets, key=str):
        job = JOB_OF.get(key, "month_job" if month else "retrain_job")
        by_run.setdefault((job, month), []).append(key)
    months_of: dict[tuple[str, tuple[str, ...]], list[str | None]] = {}
    for (job, month), keys in by_run.items():
        months_of.setdefault((job, tuple(keys)), []).append(month)
    order = list(project.instance.get_dynamic_partitions("month"))
    for (job, selected), months in months_of.items():
        named = [month for month in months if month is not None]
        batches = month_ranges(named, order) if named else [None]
        for batch in batches:
            result = defs.resolve_job_def(job).execute_in_process(
                instance=project.instance,
                tags=range_tags(batch) if batch else None,
                asset_selection=[dg.AssetKey(key) for key in selected],
                run_config={
                    "ops": {k: v for k, v in FAST_RUN_CONFIG["ops"].items() if k in selected}
                },
            )
            assert result.success


def _materialize_unsynced_until_in_sync(
    defs: dg.Definitions, project: Project, url: str
) -> list[Unsynced]:
    """Do what "Materialize unsynced" does, as often as it takes; returns each round's set."""
    rounds: list[Unsynced] = []
    while unsynced := _unsynced(url):
        assert len(rounds) < len(ASSET_KEYS), f"never in sync: {rounds}"
        rounds.append(unsynced)
        _materialize(defs, project, unsynced)
    return rounds


def test_rematerializing_unchanged_raw_data_leaves_downstream_in_sync(project: Project) -> None:
    # The quarter's months in the batch that built them (Dagster records one data version
    # per run for a batch: docs/pipeline.md, *Partitions*), with their planes.
    raw: Unsynced = {
        (asset, month)
        for asset in ("raw_flights", "raw_weather", "raw_planes")
        for month in FIRST_QUARTER
    }
    _materialize(definitions.defs, project, raw)
    assert _unsynced(project.current_url) == set()


def test_a_changed_landing_file_makes_the_features_and_model_unsynced(project: Project) -> None:
    march = layout.monthly_file(project.landing, "flights", "2013-03")
    rows = gzip.decompress(march.read_bytes()).decode().splitlines()
    layout.land_bytes(march, gzip.compress("\n".join(rows[:-100]).encode() + b"\n"), force=True)
    _materialize(definitions.defs, project, {("raw_flights", "2013-03")})
    rounds = _materialize_unsynced_until_in_sync(definitions.defs, project, project.current_url)
    # March's predictions and drift were computed from the old features. The retrained model
    # is the same (trained on January and February): it does not beat the champion, whose
    # data version stays, so the other months' predictions and drift stay in sync.
    assert rounds == [
        {("flight_features", "2013-03")},
        {
            ("trained_model", None),
            ("model_evaluation", None),
            ("flight_delay_predictions", "2013-03"),
            ("feature_drift", "2013-03"),
        },
        {("registered_model", None)},
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
        ' staleCauses(partition: "2013-01") { category reason } } } }',
    )
    assert {cause["category"] for cause in data["assetNodeOrError"]["staleCauses"]} == {"CODE"}
    rounds = _materialize_unsynced_until_in_sync(
        bumped_code_location.defs, project, project.bumped_url
    )
    # Dagster marks the asset whose code changed, in every month; its downstream follow once
    # they have new data versions. No raw asset is ever recomputed.
    months = project.instance.get_dynamic_partitions("month")
    assert months == FIRST_QUARTER
    assert rounds == [
        {("flight_features", month) for month in months},
        {("trained_model", None), ("model_evaluation", None)}
        | {("flight_delay_predictions", month) for month in months}
        | {("feature_drift", month) for month in months},
        {("registered_model", None)},
    ]
