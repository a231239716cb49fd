"""The ``mlops-assets`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from mlops_assets.landing import layout, scale, scan
from mlops_assets.runtime import local_instance, settings


def _seed(args: argparse.Namespace) -> int:
    root = Path(args.landing).resolve() if args.landing else settings.landing_dir()
    if args.if_empty and not layout.is_empty(root):
        print(f"{root}: landing zone already holds data; nothing to do")
        return 0
    if args.scale == 1:
        results = layout.seed_landing_zone(root, args.through, force=args.force)
    else:
        results = scale.seed_scaled_landing_zone(
            root, args.scale, args.seed, args.through, force=args.force
        )
    counts = Counter(result.action for result in results)
    summary = ", ".join(f"{count} {action}" for action, count in sorted(counts.items()))
    scaled = f" (flights x{args.scale}, seed {args.seed})" if args.scale > 1 else ""
    print(f"{root}: {summary}{scaled}")
    return 0


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a whole number of at least {minimum}"
            )
        return number

    return parse


def _init_instance(args: argparse.Namespace) -> int:
    home = Path(args.home).resolve() if args.home else settings.dagster_home()
    for line in local_instance.prepare_dagster_home(home, Path(args.config)):
        print(line)
    return 0


def _materialize(args: argparse.Namespace) -> int:
    import dagster as dg

    from mlops_assets.cli import rebuild
    from mlops_assets.definitions import defs

    model_config = None
    if args.config:
        try:
            model_config = rebuild.model_run_config(defs, Path(args.config))
        except rebuild.RebuildError as error:
            print(f"mlops-assets: error: {error}", file=sys.stderr)
            return 2
    with dg.DagsterInstance.get() as instance:
        try:
            runs = rebuild.rebuild(
                defs, instance, settings.landing_dir(), model_config, workers=args.workers
            )
        except rebuild.RebuildError as error:
            print(f"mlops-assets: error: {error}", file=sys.stderr)
            return 1
        jobs = Counter(run.job_name for run in instance.get_runs(dg.RunsFilter(run_ids=runs)))
    print(f"{len(runs)} runs succeeded: " + ", ".join(f"{n} {job}" for job, n in jobs.items()))
    if not jobs["scoring_job"]:
        print("no version passed the gate: nothing is @champion, so no month was scored")
    return 0


def _register_months(args: argparse.Namespace) -> int:
    import dagster as dg

    from mlops_assets.cli import rebuild

    root = settings.landing_dir()
    months = scan.complete_months(root)
    with dg.DagsterInstance.get() as instance:
        added = rebuild.register_months(instance, months)
    print(f"{root}: {len(months)} landed month(s), {len(added)} new partition(s) registered")
    return 0


def _workers(args: argparse.Namespace) -> int:
    from mlops_assets.runtime import workers

    return workers.run_workers(settings.dagster_home(), args.count, args.concurrency, args.prefix)


def _tracking_server(args: argparse.Namespace) -> int:
    from mlops_assets.runtime.tracking_server import server_command, server_environment

    if not args.backend_store_uri:
        print(
            "mlops-assets: error: set MLFLOW_BACKEND_STORE_URI (or --backend-store-uri) to the "
            "tracking server's PostgreSQL database",
            file=sys.stderr,
        )
        return 2
    try:
        environment = {**os.environ, **server_environment(args.backend_store_uri)}
    except ValueError as error:
        print(f"mlops-assets: error: {error}", file=sys.stderr)
        return 2
    command = server_command(
        args.artifacts_destination or str(settings.data_dir() / "mlartifacts"),
        args.host,
        args.port,
        args.allowed_hosts,
        args.workers,
    )
    # The server replaces this process (signals reach it); the store's URL, password
    # included, goes in its environment, not on its command line.
    os.execve(command[0], command, environment)


def _table_schemas(args: argparse.Namespace) -> int:
    import json

    from mlops_assets.defs.shared import tables

    text = json.dumps(tables.column_schemas(), indent=2, sort_keys=True) + "\n"
    if args.check:
        if tables.SNAPSHOT.read_text() != text:
            print(f"{tables.SNAPSHOT}: stale; run `mlops-assets table-schemas`", file=sys.stderr)
            return 1
        print(f"{tables.SNAPSHOT}: matches mlops_assets/ml/schemas.py")
        return 0
    tables.SNAPSHOT.write_text(text)
    print(f"{tables.SNAPSHOT}: written from mlops_assets/ml/schemas.py")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests)."""
    parser = argparse.ArgumentParser(prog="mlops-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser(
        "seed",
        help="Land the NYC flights 2013 data as monthly files in the landing zone "
        "(with --scale K, K times its flights).",
    )
    seed.add_argument(
        "--through", metavar="YYYY-MM", help="last month to land (default: all of 2013)"
    )
    seed.add_argument(
        "--force", action="store_true", help="overwrite landed files whose content differs"
    )
    seed.add_argument(
        "--if-empty", action="store_true", help="do nothing when anything has landed already"
    )
    seed.add_argument(
        "--landing", metavar="DIR", help="landing-zone folder (default: <data dir>/landing)"
    )
    seed.add_argument(
        "--scale",
        type=_whole_number(1),
        default=1,
        metavar="K",
        help="land K times the flights: each month's real flights plus K-1 copies resampled "
        "with small perturbations (departures moved a few minutes, delays jittered, real tail "
        "numbers permuted, free flight numbers); weather and planes stay real (default 1: the "
        "real data only)",
    )
    seed.add_argument(
        "--seed",
        type=_whole_number(0),
        default=0,
        metavar="S",
        help="seed of the --scale perturbations: the same seed lands the same bytes (default 0)",
    )
    seed.set_defaults(handler=_seed)
    init = commands.add_parser(
        "init-instance",
        help="Create the Dagster home with the project's dagster.yaml (never overwritten) "
        "and the first-run community pop-up dismissed.",
    )
    init.add_argument(
        "--config",
        metavar="FILE",
        default="deploy/local/dagster.yaml",
        help="instance configuration to copy (default: deploy/local/dagster.yaml)",
    )
    init.add_argument("--home", metavar="DIR", help="Dagster home (default: $DAGSTER_HOME)")
    init.set_defaults(handler=_init_instance)
    materialize = commands.add_parser(
        "materialize",
        help="Register every landed month and materialize everything in this process: "
        "the planes, the months in batches (as a backfill runs them), the model, the scoring.",
    )
    materialize.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        metavar="N",
        help="batches of months run N at a time, each in its own process "
        "(default: the CPU count, at most 4)",
    )
    materialize.add_argument(
        "--config",
        metavar="FILE",
        help="run config (YAML) of the model run, as the launchpad of retrain_job takes it: "
        "e.g. a smaller search (default: the assets' own defaults)",
    )
    materialize.set_defaults(handler=_materialize)
    register = commands.add_parser(
        "register-months",
        help="Register every landed month as a partition of the Dagster instance, so the UI "
        "can backfill them (the landing_zone_sensor does it too when it is on).",
    )
    register.set_defaults(handler=_register_months)
    table_schemas = commands.add_parser(
        "table-schemas",
        help="Write the tables' column schemas, as the UI shows them, from the pandera "
        "schemas in mlops_assets/ml/schemas.py (run it after changing them): the code "
        "location reads that file when it loads, without importing pandera.",
    )
    table_schemas.add_argument(
        "--check", action="store_true", help="exit 1 when the file is stale; write nothing"
    )
    table_schemas.set_defaults(handler=_table_schemas)
    workers = commands.add_parser(
        "workers",
        help="Start N Celery workers for the production profile (MLOPS_ENV=production): "
        "they run the steps that runs send to the broker named by MLOPS_CELERY_BROKER.",
    )
    workers.add_argument("--count", type=int, default=2, metavar="N", help="workers (default 2)")
    workers.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="K",
        help="steps each worker runs at once (default 1: a step uses the cores it is given)",
    )
    workers.add_argument(
        "--prefix",
        default="mlops",
        help="workers are named <prefix>-<n>@<host> (default mlops); names must be unique",
    )
    workers.set_defaults(handler=_workers)
    tracking = commands.add_parser(
        "tracking-server",
        help="Run the production MLflow tracking server: PostgreSQL backend store, artifacts "
        "served through it, bound to loopback unless --host says otherwise.",
    )
    tracking.add_argument(
        "--backend-store-uri",
        default=os.environ.get("MLFLOW_BACKEND_STORE_URI"),
        metavar="URL",
        help="PostgreSQL URL (default: $MLFLOW_BACKEND_STORE_URI, which keeps the password "
        "out of the process list)",
    )
    tracking.add_argument(
        "--artifacts-destination",
        default=os.environ.get("MLFLOW_ARTIFACTS_DESTINATION"),
        metavar="URI",
        help="artifact store: a folder or s3://, gs://... (default: "
        "$MLFLOW_ARTIFACTS_DESTINATION, else <data dir>/mlartifacts)",
    )
    tracking.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    tracking.add_argument("--port", type=int, default=5000, help="port (5000)")
    tracking.add_argument(
        "--allowed-hosts",
        default=os.environ.get("MLFLOW_SERVER_ALLOWED_HOSTS"),
        metavar="HOSTS",
        help="Host headers answered (default: $MLFLOW_SERVER_ALLOWED_HOSTS, else loopback)",
    )
    tracking.add_argument("--workers", type=int, default=1, help="server workers (1)")
    tracking.set_defaults(handler=_tracking_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exit status 2 with a one-line message on bad input."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (layout.LandingError, FileNotFoundError) as error:
        print(f"mlops-assets: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
