"""Slack and Discord notifications against a real HTTP server on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from mlops_assets import definitions
from mlops_assets.defs.monitoring.freshness_sensor import freshness_violation_sensor
from mlops_assets.defs.monitoring.run_failure_sensors import notify_run_failure_sensor
from mlops_assets.resources import Notifier
from mlops_assets_tests.contract import FAST_RUN_CONFIG

SECRET = "T000/B000/s3cr3t-token"


class Webhooks:
    """A loopback server: ``/ok/...`` answers 200, ``/fail/...`` 500, ``/slow/...`` too late."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.append((self.path, body))
                if self.path.startswith("/slow"):
                    time.sleep(1.5)
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, prefix: str) -> list[dict[str, Any]]:
        return [body for path, body in self.received if path.startswith(prefix)]


@pytest.fixture
def webhooks() -> Iterator[Webhooks]:
    hooks = Webhooks()
    thread = threading.Thread(target=hooks.server.serve_forever, daemon=True)
    thread.start()
    yield hooks
    hooks.server.shutdown()
    hooks.server.server_close()
    thread.join()


def test_both_webhooks_get_their_payload_and_failures_never_raise(
    webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("notify-test")
    monkeypatch.setenv("MLOPS_SLACK_WEBHOOK_URL", f"{webhooks.url}/ok/slack/{SECRET}")
    monkeypatch.setenv("MLOPS_DISCORD_WEBHOOK_URL", f"{webhooks.url}/ok/discord/{SECRET}")
    sent = Notifier().send("Title", "x" * 3000, "http://127.0.0.1:3000/runs/abc", log)
    assert sent == {"slack": "sent", "discord": "sent"}
    slack, discord = webhooks.bodies("/ok/slack")[0], webhooks.bodies("/ok/discord")[0]
    assert slack["text"].startswith("*Title*\nxxx")
    assert slack["text"].endswith("<http://127.0.0.1:3000/runs/abc|Open in Dagster>")
    assert discord["content"].startswith("**Title**\nxxx") and len(discord["content"]) == 2000

    monkeypatch.setenv("MLOPS_SLACK_WEBHOOK_URL", f"{webhooks.url}/fail/slack/{SECRET}")
    monkeypatch.setenv("MLOPS_DISCORD_WEBHOOK_URL", f"{webhooks.url}/slow/discord/{SECRET}")
    with caplog.at_level(logging.INFO, logger="notify-test"):
        started = time.perf_counter()
        failed = Notifier(timeout_seconds=0.5).send("Broken", "text", None, log)
        assert time.perf_counter() - started < 1.4  # gave the slow one up
    assert failed == {"slack": "failed: HTTP 500", "discord": "failed: timed out after 0.5 s"}
    assert "slack notification 'Broken' failed: HTTP 500" in caplog.text
    assert SECRET not in caplog.text  # the URLs are secrets

    monkeypatch.delenv("MLOPS_SLACK_WEBHOOK_URL")
    monkeypatch.delenv("MLOPS_DISCORD_WEBHOOK_URL")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="notify-test"):
        logged = Notifier().send("Quiet", "nobody listens", None, log)
    assert logged == {"slack": "not configured", "discord": "not configured"}
    assert "notification (no webhook configured): Quiet: nobody listens" in caplog.text
    refused = f"http://127.0.0.1:{_closed_port()}/hook"
    monkeypatch.setenv("MLOPS_SLACK_WEBHOOK_URL", refused)
    assert Notifier().send("Down", "t", None, log)["slack"].startswith("failed: ")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_failed_run_a_promotion_and_a_rollback_are_posted(
    webhooks: Webhooks,
    first_quarter_instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_SLACK_WEBHOOK_URL", f"{webhooks.url}/ok/slack/{SECRET}")
    instance = first_quarter_instance  # January to March ingested
    instance.add_dynamic_partitions("month", ["2013-04"])
    failed = definitions.defs.resolve_job_def("month_job").execute_in_process(
        instance=instance,
        partition_key="2013-04",
        asset_selection=[dg.AssetKey("flight_features")],
        raise_on_error=False,
    )
    assert not failed.success  # the month's raw data were never materialized
    run = instance.get_run_by_id(failed.run_id)
    assert run is not None
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    with dg.build_run_status_sensor_context(
        sensor_name="notify_run_failure_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"notifier": Notifier()},
    ) as context:
        notify_run_failure_sensor(context.for_run_failure())
    text = webhooks.bodies("/ok/slack")[-1]["text"]
    assert text.startswith("*Dagster run failed: month_job [2013-04]*")
    assert "Failed step(s): flight_features" in text
    assert "input raw_flights (partition 2013-04) is not stored at" in text
    assert text.endswith(f"/runs/{failed.run_id}|Open in Dagster>")

    instance.delete_dynamic_partition("month", "2013-04")  # it never landed
    retrain = definitions.defs.resolve_job_def("retrain_job")
    weak = {
        "ops": {
            **FAST_RUN_CONFIG["ops"],
            "trained_model": {"config": {"max_iter": 2, "trials": 1, "include_baseline": False}},
            "registered_model": {"config": {"min_roc_auc": 0.5}},
        }
    }
    assert retrain.execute_in_process(instance=instance, run_config=weak).success
    first = webhooks.bodies("/ok/slack")[-1]["text"]
    assert first.startswith("*flight_delay_classifier: version 1 is the new @champion*")
    assert "Previous champion: none. no champion yet" in first
    assert retrain.execute_in_process(instance=instance, run_config=weak).success
    assert webhooks.bodies("/ok/slack")[-1]["text"] == first  # a losing version: no post
    assert retrain.execute_in_process(instance=instance, run_config=FAST_RUN_CONFIG).success
    promoted = webhooks.bodies("/ok/slack")[-1]["text"]
    assert promoted.startswith("*flight_delay_classifier: version 3 is the new @champion*")
    assert "Previous champion: 1. promoted" in promoted
    rollback = definitions.defs.resolve_job_def("rollback_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"roll_back_champion": {"config": {"reason": "v3 misbehaves"}}}},
    )
    rolled = webhooks.bodies("/ok/slack")[-1]["text"]
    assert rolled.startswith(
        "*flight_delay_classifier: @champion rolled back from version 3 to 1*\n"
        "Reason: v3 misbehaves"
    )
    assert all(SECRET not in str(event) for event in rollback.all_events)


def test_a_stale_champion_and_predictions_turn_fail_in_the_daemon_and_are_posted(
    webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance
) -> None:
    """The real freshness daemon loop evaluates the shipped policies; the sensor posts it."""
    from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.freshness import FreshnessDaemon

    monkeypatch.setenv("MLOPS_SLACK_WEBHOOK_URL", f"{webhooks.url}/ok/slack/{SECRET}")
    assert instance.freshness_enabled
    landed = time.time()
    instance.report_runless_asset_event(dg.AssetMaterialization("registered_model"))
    instance.report_runless_asset_event(
        dg.AssetMaterialization("flight_delay_predictions", partition="2013-12")
    )
    target = ModuleTarget(
        module_name="mlops_assets.definitions",
        attribute="defs",
        working_directory=str(Path(__file__).parents[2]),
        location_name="mlops_assets",
    )

    def states_at(hours: float) -> dict[str, str]:
        with freeze_time(landed + hours * 3600):
            list(FreshnessDaemon().run_iteration(workspace))
        records = instance.get_freshness_state_records(
            [dg.AssetKey("registered_model"), dg.AssetKey("flight_delay_predictions")]
        )
        return {key.to_user_string(): r.freshness_state.value for key, r in records.items()}

    def tick(cursor: str | None) -> tuple[str, str | None]:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"notifier": Notifier()}
        )
        result = freshness_violation_sensor(context)
        assert isinstance(result, dg.SkipReason)
        return str(result.skip_message), context.cursor

    with create_test_daemon_workspace_context(target, instance) as workspace:
        assert states_at(1) == {"registered_model": "PASS", "flight_delay_predictions": "PASS"}
        message, cursor = tick(None)
        assert message == "no change of freshness state to report" and not webhooks.received

        assert states_at(30) == {"registered_model": "PASS", "flight_delay_predictions": "WARN"}
        message, cursor = tick(cursor)
        assert message == "flight_delay_predictions: PASS -> WARN"

        assert states_at(9 * 24) == {
            "registered_model": "FAIL",
            "flight_delay_predictions": "FAIL",
        }
        message, cursor = tick(cursor)
        assert "registered_model: PASS -> FAIL" in message
        assert "flight_delay_predictions: WARN -> FAIL" in message
        # Told once: the next tick, with the same states, posts nothing more.
        assert tick(cursor)[0] == "no change of freshness state to report"

    titles = [body["text"].splitlines()[0] for body in webhooks.bodies("/ok/slack")]
    assert titles == [
        "*Freshness WARN: flight_delay_predictions*",
        "*Freshness FAIL: registered_model*",
        "*Freshness FAIL: flight_delay_predictions*",
    ]
    assert SECRET not in json.dumps([body for _, body in webhooks.received])
