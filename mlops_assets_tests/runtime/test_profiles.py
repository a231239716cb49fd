"""The environment switch: one variable, local by default, the same resource keys."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from mlops_assets.cli import commands
from mlops_assets.runtime import profiles, settings
from mlops_assets_tests.stack import ROOT


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "local"), ("", "local"), ("production", "production"), (" local ", "local")],
)
def test_the_environment_is_local_unless_production_is_asked_for(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    if value is None:
        monkeypatch.delenv(settings.ENVIRONMENT_ENV, raising=False)
    else:
        monkeypatch.setenv(settings.ENVIRONMENT_ENV, value)
    assert settings.environment() == expected


def test_an_unknown_environment_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(settings.ENVIRONMENT_ENV, "prod")
    with pytest.raises(settings.UnknownEnvironmentError) as refused:
        settings.environment()
    assert (
        str(refused.value) == "MLOPS_ENV='prod': unknown environment; use one of local, production"
    )


def test_production_runs_steps_on_celery_with_late_acknowledgement() -> None:
    assert profiles.executor_for("local") is dg.in_process_executor
    executor = profiles.executor_for("production")
    assert executor.name == "celery_workers"
    assert profiles.celery_config()["config_source"] == {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
    }


def test_the_code_location_loads_in_production_with_the_celery_executor() -> None:
    probe = (
        "from mlops_assets import definitions as d; "
        "print(d.environment, {j.executor_def.name for j in d.defs.resolve_all_job_defs()})"
    )
    shown = (
        subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env={**os.environ, settings.ENVIRONMENT_ENV: "production"},
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert shown == "production {'celery_workers'}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "set MLFLOW_BACKEND_STORE_URI (or --backend-store-uri)"),
        (
            ["--backend-store-uri", "sqlite:///mlflow.db"],
            "backend store of scheme 'sqlite': the production tracking server keeps its runs",
        ),
    ],
)
def test_the_tracking_server_refuses_a_store_that_is_not_postgresql(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("MLFLOW_BACKEND_STORE_URI", raising=False)
    assert commands.main(["tracking-server", *argv]) == 2
    assert message in capsys.readouterr().err
