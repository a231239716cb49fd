"""Process-level policies: the Dagster home preparation and the garbage-collector policy."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_assets.cli import commands
from mlops_assets.landing import layout
from mlops_assets.runtime import gc_policy, local_instance, settings
from mlops_assets_tests.contract import FAST_RUN_CONFIG

ROOT = Path(__file__).resolve().parents[2]


def test_init_instance_writes_config_once_and_dismisses_the_popup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    template = ROOT / "deploy" / "local" / "dagster.yaml"
    assert commands.main(["init-instance", "--home", str(home), "--config", str(template)]) == 0
    assert (home / "dagster.yaml").read_text() == template.read_text()
    assert (home / local_instance.NUX_FILE).is_file()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    assert commands.main(["init-instance", "--home", str(home), "--config", str(template)]) == 0
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"
    assert "kept" in capsys.readouterr().out


def test_init_instance_names_a_missing_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert commands.main(["init-instance", "--home", str(tmp_path), "--config", str(missing)]) == 2
    assert f"{missing}: instance configuration template not found" in capsys.readouterr().err


def test_heavy_imports_freeze_only_when_something_new_was_imported() -> None:
    gc.unfreeze()
    try:
        with gc_policy.heavy_imports():
            assert not gc.isenabled()
            import json  # noqa: F401  (already imported: nothing new)
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0
        sys.modules.pop("colorsys", None)
        with gc_policy.heavy_imports():
            import colorsys  # noqa: F401
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_heavy_imports_restore_the_collector_when_an_import_fails() -> None:
    with pytest.raises(ModuleNotFoundError), gc_policy.heavy_imports():
        import mlops_assets_no_such_module  # noqa: F401
    assert gc.isenabled()


def test_loading_the_code_location_freezes_it_and_skips_the_final_collection() -> None:
    probe = (
        "import atexit, gc; import mlops_assets.definitions; "
        "print(gc.get_freeze_count() > 100_000); "
        "gc.unfreeze(); atexit._run_exitfuncs(); print(gc.get_freeze_count() > 100_000)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.split() == ["True", "True"]


def test_local_instance_queues_runs_two_at_a_time(tmp_path: Path) -> None:
    home = tmp_path / "home"
    local_instance.prepare_dagster_home(home, ROOT / "deploy" / "local" / "dagster.yaml")
    probe = (
        "import dagster as dg; i = dg.DagsterInstance.get(); "
        "print(i.get_concurrency_config().run_queue_config.max_concurrent_runs, "
        "i.telemetry_enabled)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DAGSTER_HOME": str(home)},
    )
    assert done.stdout.split() == ["2", "False"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read the run config (No such file or directory)"),
        ("ops: [unclosed", "not YAML"),
        ("- 1\n", "a run config is a mapping"),
        (
            "ops:\n  trained_model:\n    config:\n      max_iterations: 3\n",
            'not a run config of retrain_job: Received unexpected config entry "max_iterations"',
        ),
    ],
)
def test_materialize_refuses_a_bad_run_config_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, problem: str
) -> None:
    config = tmp_path / "search.yaml"
    if content is not None:
        config.write_text(content)
    # No landing zone, no instance: the config is checked first, and alone.
    assert commands.main(["materialize", "--config", str(config)]) == 2
    assert f"mlops-assets: error: {config}: {problem}" in capsys.readouterr().err


def _session_members(session: int) -> list[str]:
    """Every process of a session, zombies included: ``pid state command`` each."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # /proc/<pid>/stat: "pid (comm) state ppid pgrp session ..."; comm may hold spaces.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, _, _, sid = stat.rsplit(")", 1)[1].split()[:4]
        if int(sid) == session:
            found.append(f"{entry.name} {state} {comm}")
    return found


def test_materialize_leaves_no_process_behind(tmp_path: Path) -> None:
    # Two months, one per run: two batches in two worker processes, so the pool, its workers
    # and multiprocessing's resource tracker all start (the scoring pool is the same helper;
    # a model trained on January alone does not pass the gate, so nothing is scored). Once
    # the command has exited, nothing of its session may remain, not even a zombie: where
    # nothing reaps orphans, a zombie stays for good.
    data, home = tmp_path / "data", tmp_path / "home"
    layout.seed_landing_zone(data / "landing", "2013-02")
    local_instance.prepare_dagster_home(home, ROOT / "deploy" / "local" / "dagster.yaml")
    env = {
        **os.environ,
        "MLOPS_DATA_DIR": str(data),
        "DAGSTER_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
        settings.MONTHS_PER_RUN_ENV: "1",
    }
    # The months and the processes are under test, not the search: a small one, as a user
    # passes it.
    config = tmp_path / "small_search.yaml"
    config.write_text(yaml.safe_dump(FAST_RUN_CONFIG))
    command = [
        str(Path(sys.executable).parent / "mlops-assets"),
        *("materialize", "--workers", "2", "--config", str(config)),
    ]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, err[-3000:]
    assert "2 month_job" in out
    assert _session_members(process.pid) == []  # start_new_session: the session id is its pid
