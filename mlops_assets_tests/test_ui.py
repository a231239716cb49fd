"""The local stack as users drive it, against ``dagster dev`` + ``mlflow server`` on loopback.

A real Chromium on the Dagster and MLflow UIs, and Dagster's own GraphQL client.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient
from mlflow import MlflowClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from mlops_assets.defs.shared.partitions import MONTHS_PER_RUN
from mlops_assets_tests.contract import ASSET_KEYS, FIRST_QUARTER, QUICK_SEARCH
from mlops_assets_tests.stack import ROOT, LocalStack, graphql, local_stack, wait_until

pytestmark = pytest.mark.e2e

ASSETS = ASSET_KEYS
EDGES = {
    ("raw_flights", "flight_features"),
    ("raw_weather", "flight_features"),
    ("raw_planes", "flight_features"),
    ("flight_features", "trained_model"),
    ("flight_features", "model_evaluation"),
    ("trained_model", "model_evaluation"),
    ("trained_model", "registered_model"),
    ("model_evaluation", "registered_model"),
    ("flight_features", "flight_delay_predictions"),
    ("registered_model", "flight_delay_predictions"),
    ("flight_features", "feature_drift"),
    ("registered_model", "feature_drift"),
}
DRAWN_EDGES_JS = "\n".join(
    line
    for line in (Path(__file__).parent / "drawn_edges.js").read_text().splitlines()
    if not line.startswith("//")
)
SCREENSHOTS = ROOT / "test-output" / "ui"
RUN_TIMEOUT_S = 600


def chromium_binary() -> str:
    """Debian's Chromium (``apt-get install chromium``); the test never downloads a browser."""
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    raise RuntimeError(
        "Chromium is not installed: run `apt-get install -y chromium` (make test does)"
    )


@pytest.fixture(scope="module")
def stack(
    first_quarter_landing: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """Both UIs on free loopback ports with their own stores, over the first quarter's landed
    files (the full year is rebuilt by ``test_pipeline``); nothing left running after."""
    with local_stack(tmp_path_factory.mktemp("stack"), first_quarter_landing) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_binary(), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page with a window large enough for the whole asset graph."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


class Steps:
    """Named test steps that each leave a screenshot, or one of the failure if they fail."""

    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.folder = SCREENSHOTS / test_name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.count += 1
        stem = f"{self.count:02d}-{name}"
        try:
            yield
        except BaseException as error:
            shot = self.folder / f"{stem}-FAILED.png"
            self.page.screenshot(path=shot, full_page=True)
            error.add_note(f"step {name!r} failed; screenshot: {shot}")
            raise
        self.page.screenshot(path=self.folder / f"{stem}.png", full_page=True)


def _asset_named(label: str) -> str:
    """The asset a graph label shows; zoomed out, the UI truncates long names in the middle
    (``flight_delay_predictions`` reads ``fligh…_predictions``)."""
    head, _, tail = label.strip().partition("…")
    matches = [a for a in ASSETS if a == head or (tail and a.startswith(head) and a.endswith(tail))]
    assert len(matches) == 1, f"label {label!r} names {matches}"
    return matches[0]


def _expect_every_asset_drawn(page: Page) -> None:
    names = page.locator("svg[class*=AssetGraphExplorer] div[class*=AssetNode_assetName]")
    expect(names).to_have_count(len(ASSETS))
    expect(names.first).to_be_visible()
    assert sorted(_asset_named(text) for text in names.all_inner_texts()) == sorted(ASSETS)


def _drawn_edges_once_settled(page: Page) -> list[tuple[str, str]]:
    """The drawn edges, read once two readings 0.5 s apart agree (the graph animates)."""
    readings: list[list[tuple[str, str]]] = []

    def settled() -> bool:
        drawn = page.evaluate(DRAWN_EDGES_JS)
        # Each end must touch its node (within a few pixels), not merely be nearest to one.
        edges = sorted(
            (_asset_named(edge["src"]), _asset_named(edge["dst"]))
            for edge in drawn
            if max(edge["ds"], edge["dd"]) < 5
        )
        if len(edges) != len(drawn):
            return False
        readings.append(edges)
        return len(readings) > 1 and readings[-1] == readings[-2]

    wait_until(settled, 20, "the lineage graph to stop moving")
    return readings[-1]


def _run_errors(stack: LocalStack, run_id: str) -> list[str]:
    """The failure messages of a run's steps (and of the run), as its page lists them."""
    data = graphql(
        stack.dagster_url,
        "query ($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {"
        " ... on ExecutionStepFailureEvent { stepKey error { message } }"
        " ... on RunFailureEvent { message } } } } }",
        {"runId": run_id},
    )
    return [
        f"{event.get('stepKey') or 'run'}: "
        + str((event.get("error") or {}).get("message") or event.get("message"))
        for event in data["logsForRun"]["events"]
        if event
    ]


def _wait_for_run_success(stack: LocalStack, run_id: str) -> None:
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(stack.dagster_url.rsplit(":", 1)[1]))

    def finished() -> bool:
        status = client.get_run_status(run_id).value
        if status in {"FAILURE", "CANCELED"}:
            raise AssertionError(f"run {run_id} ended {status}: {_run_errors(stack, run_id)}")
        return bool(status == "SUCCESS")

    wait_until(finished, RUN_TIMEOUT_S, f"run {run_id} to succeed", interval=2)


def _run_materializations(stack: LocalStack, run_id: str) -> dict[str, dict[str, object]]:
    data = graphql(
        stack.dagster_url,
        """query ($runId: ID!) { runOrError(runId: $runId) { ... on Run {
            assetMaterializations { assetKey { path } metadataEntries { label
              ... on FloatMetadataEntry { floatValue }
              ... on UrlMetadataEntry { url }
              ... on TextMetadataEntry { text } } } } } }""",
        {"runId": run_id},
    )
    found: dict[str, dict[str, object]] = {}
    for event in data["runOrError"]["assetMaterializations"]:
        entries = {
            e["label"]: e.get("floatValue", e.get("url", e.get("text")))
            for e in event["metadataEntries"]
        }
        found["/".join(event["assetKey"]["path"])] = entries
    return found


MONTHS = FIRST_QUARTER
MODEL_ASSETS = ["model_evaluation", "registered_model", "trained_model"]
MONTH_ASSETS = ["flight_features", "raw_flights", "raw_planes", "raw_weather"]


def _assert_mlflow_runs(stack: LocalStack, dagster_run_id: str, assets: list[str]) -> None:
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    parents = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.dagster_run_id = '{dagster_run_id}'"
    )
    assert len(parents) == 1, f"expected one parent MLflow run, found {len(parents)}"
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert sorted(r.data.tags["dagster.asset_key"] for r in runs) == assets
    assert {r.data.tags["dagster.run_id"] for r in runs} == {dagster_run_id}
    assert {r.info.status for r in runs} == {"FINISHED"}


def _backfill_runs(stack: LocalStack, backfill_id: str) -> list[dict[str, object]]:
    data = graphql(
        stack.dagster_url,
        """query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs {
            results { runId status jobName tags { key value } } } } }""",
        {"tags": [{"key": "dagster/backfill", "value": backfill_id}]},
    )
    return list(data["runsOrError"]["results"])


def _wait_for_backfill(stack: LocalStack, backfill_id: str) -> None:
    def finished() -> bool:
        data = graphql(
            stack.dagster_url,
            "query ($id: String!) { partitionBackfillOrError(backfillId: $id) {"
            " ... on PartitionBackfill { status } } }",
            {"id": backfill_id},
        )
        status = data["partitionBackfillOrError"]["status"]
        if status in {"FAILED", "COMPLETED_FAILED", "CANCELED", "CANCELING"}:
            raise AssertionError(f"backfill {backfill_id} ended {status}")
        return bool(status in {"COMPLETED", "COMPLETED_SUCCESS"})

    wait_until(finished, RUN_TIMEOUT_S, f"backfill {backfill_id} to complete", interval=3)


def test_user_backfills_every_month_from_the_browser(stack: LocalStack, page: Page) -> None:
    """Lineage drawn, "Materialize all" backfills all months, links lead to the @champion."""
    step = Steps(page, "backfill_from_browser")

    with step("lineage"):
        page.goto(f"{stack.dagster_url}/asset-groups")
        expect(page.get_by_text("Global asset lineage")).to_be_visible()
        # Groups start collapsed; the graph's context menu expands them, as a user would.
        graph = page.locator("svg[class*=AssetGraphExplorer]").locator("xpath=..").bounding_box()
        assert graph is not None
        page.mouse.click(graph["x"] + graph["width"] / 2, graph["y"] + 30, button="right")
        page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
        _expect_every_asset_drawn(page)
        lineage_url = page.url  # records the expanded groups
        drawn = _drawn_edges_once_settled(page)
        assert set(drawn) == EDGES
        assert len(drawn) == len(EDGES)
        # The community pop-up (shown once per instance) was dismissed by init-instance.
        expect(page.get_by_role("dialog")).to_have_count(0)

    with step("materialize-all-months"):
        page.get_by_role("button", name=re.compile("Materialize all")).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"Launch runs to materialize {len(ASSETS)} assets")

        # The months registered by `mlops-assets register-months` (make run does it).
        # A click on "All" before the dialog has loaded the months selects none of them (the
        # dialog then falls back to an empty "Custom"): click until the count shows, as a user
        # would.
        def every_month_selected() -> bool:
            dialog.get_by_text("All", exact=True).click()
            return f"{len(MONTHS)} partitions" in dialog.inner_text()

        wait_until(every_month_selected, 30, "the dialog to select every month", interval=1)
        dialog.get_by_role("button", name="Launch backfill").click()
        toast = page.get_by_text(re.compile(r"Created backfill \w+"))
        expect(toast).to_be_visible()
        backfill_id = (toast.inner_text().split() or [""])[-1]
        assert re.fullmatch(r"[a-z0-9]{8}", backfill_id), f"no backfill id in {toast}"

    with step("backfill-succeeded"):
        _wait_for_backfill(stack, backfill_id)
        page.goto(f"{stack.dagster_url}/runs/b/{backfill_id}")
        expect(page.get_by_text(backfill_id).first).to_be_visible()
        for month in MONTHS:  # a few partitions are listed, many are counted
            expect(page.locator("body")).to_contain_text(month)
        # One progress row per asset of the backfill, each complete.
        expect(page.get_by_text("100% completed")).to_have_count(len(ASSETS))
        runs = _backfill_runs(stack, backfill_id)
        assert {run["status"] for run in runs} == {"SUCCESS"}
        # The assets' BackfillPolicy: one run per batch of months for their raw data and
        # features, one for the model, one per batch for the predictions and drift (they
        # wait for the registered model): see docs/pipeline.md, *Partitions*.
        batches = -(-len(MONTHS) // MONTHS_PER_RUN)
        assert len(runs) == batches + 1 + batches
        by_run = {
            str(run["runId"]): _run_materializations(stack, str(run["runId"])) for run in runs
        }
        model_run_id = next(r for r, found in by_run.items() if "registered_model" in found)
        assert sorted(by_run[model_run_id]) == MODEL_ASSETS

    with step("all-materialized"):
        for asset in MODEL_ASSETS:
            page.goto(f"{stack.dagster_url}/assets/{asset}")
            expect(page.get_by_text("Latest materialization")).to_be_visible()
        page.goto(f"{stack.dagster_url}/assets/registered_model")
        expect(page.locator(f"a[href*='/runs/{model_run_id}']").first).to_be_attached()
        for asset in (*MONTH_ASSETS, "flight_delay_predictions", "feature_drift"):
            page.goto(f"{stack.dagster_url}/assets/{asset}?view=partitions")
            expect(page.get_by_text(MONTHS[-1]).first).to_be_visible()
            expect(page.locator("body")).to_contain_text(f"Materialized ({len(MONTHS)})")
            expect(page.locator("body")).to_contain_text("Missing (0)")
        page.goto(lineage_url)
        _expect_every_asset_drawn(page)

    with step("registered-model"):
        auc = _run_materializations(stack, model_run_id)["registered_model"]["holdout_roc_auc"]
        # March's leak-free figure is 0.744 with the default search (contract.QUICK_SEARCH).
        assert isinstance(auc, float) and auc >= 0.72
        page.goto(f"{stack.dagster_url}/assets/registered_model")
        expect(page.get_by_role("row", name=re.compile("holdout_roc_auc"))).to_contain_text(
            repr(auc)
        )
        version_link = page.get_by_role("row", name=re.compile("model_version")).locator(
            f"a[href^='{stack.mlflow_url}/#/models/flight_delay_classifier/versions/']"
        )
        expect(version_link.first).to_be_visible()
        href = version_link.first.get_attribute("href")
        # The definition panel: description, group, owner and kind as declared in code.
        body = page.locator("body")
        expect(body).to_contain_text("Registry version of the model")
        for shown in ("registry", "mlops", "ML Flow"):
            expect(body).to_contain_text(shown)

    with step("mlflow-champion"):
        assert href is not None
        page.goto(href)  # the metadata link opens a new tab; follow it in this one
        expect(page.get_by_text("@ champion")).to_be_visible()

    _assert_mlflow_runs(stack, model_run_id, MODEL_ASSETS)


def test_graphql_client_submits_a_month_and_the_retraining(stack: LocalStack) -> None:
    """Dagster's GraphQL client, as other tools use it: submit, poll, read materializations."""
    port = int(stack.dagster_url.rsplit(":", 1)[1])
    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    data = graphql(
        stack.dagster_url,
        '{ assetNodeOrError(assetKey: {path: ["flight_features"]}) { ... on AssetNode {'
        " partitionStats { numMaterialized } } } }",
    )
    # The last month always; every month when the browser test did not build them first.
    built = data["assetNodeOrError"]["partitionStats"]["numMaterialized"] == len(MONTHS)
    for month in MONTHS[-1:] if built else MONTHS:
        run_id = client.submit_job_execution("month_job", tags={"dagster/partition": month})
        _wait_for_run_success(stack, run_id)
        # The month's drift is measured when a champion exists (the browser test made one).
        drift = ["feature_drift"] if built else []
        assert sorted(_run_materializations(stack, run_id)) == sorted(MONTH_ASSETS + drift)
    _assert_mlflow_runs(stack, run_id, sorted(MONTH_ASSETS + drift))
    # A tool passes its run config as the launchpad would: a smaller search than the default
    # (which the browser test ran) keeps the holdout AUC above the bar at a third of the cost.
    run_id = client.submit_job_execution("retrain_job", run_config=QUICK_SEARCH)
    _wait_for_run_success(stack, run_id)
    materialized = _run_materializations(stack, run_id)
    assert sorted(materialized) == MODEL_ASSETS
    evaluation = materialized["model_evaluation"]
    assert (
        isinstance(evaluation["holdout_roc_auc"], float) and evaluation["holdout_roc_auc"] >= 0.72
    )
    assert str(materialized["registered_model"]["model_version"]).startswith(
        f"{stack.mlflow_url}/#/models/flight_delay_classifier/versions/"
    )
    _assert_mlflow_runs(stack, run_id, MODEL_ASSETS)
