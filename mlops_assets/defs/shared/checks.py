"""Data-quality checks run inside the raw and feature assets, one result per partition.

The checks run on the table an asset has just built, before it is stored. Every result is
reported (the UI shows it on the partition, with its numbers), then a failed *blocking*
check stops the step with a message naming the file, the columns and the values: the
partitions stored before stay as they were (in a batch of months, every month of the batch:
none is stored), and nothing downstream (features, training, the ``@champion``) ever sees the
bad data. The other checks only warn.

A step over a batch of months reports one evaluation per month and check
(:func:`month_evaluations`): Dagster 1.13 gives an ``AssetCheckResult`` the partition of a
single-partition step only, so the monthly assets declare their checks optional
(:func:`mlops_assets.defs.shared.partitions.month_asset`) and log ``AssetCheckEvaluation`` events
that name their month.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.defs.shared.partitions import MONTHS

if TYPE_CHECKING:
    from mlops_assets.ml.quality import Outcome


@dataclass(frozen=True)
class Check:
    """A data-quality check an asset runs on each partition it builds."""

    name: str
    blocking: bool
    description: str


SCHEMA = Check("schema", True, "Declared columns, dtypes, value ranges and allowed codes.")
ROWS_IN_MONTH = Check("rows_in_month", True, "Every row of the month's file is in that month.")
DUPLICATES = Check("duplicates", True, "No two rows share the natural key.")
NULL_RATES = Check("null_rates", False, "Each column's share of missing values under its limit.")
ROW_COUNT = Check("row_count", False, "Row count within a band of the previous month's.")
IMPOSSIBLE_READINGS = Check(
    "impossible_readings", False, "Readings outside physical limits (blanked and listed)."
)
LABEL_RATE = Check("label_rate", True, "The share of delayed flights is plausible.")
WEATHER_COVERAGE = Check(
    "weather_coverage", True, "Share of flights with an origin weather observation."
)

RAW_FLIGHTS_CHECKS = (SCHEMA, ROWS_IN_MONTH, DUPLICATES, NULL_RATES, ROW_COUNT)
RAW_WEATHER_CHECKS = (*RAW_FLIGHTS_CHECKS, IMPOSSIBLE_READINGS)
FEATURE_CHECKS = (SCHEMA, DUPLICATES, LABEL_RATE, WEATHER_COVERAGE, NULL_RATES)


def check_specs(asset: str, checks: Sequence[Check]) -> list[dg.AssetCheckSpec]:
    """The asset's check specs, partitioned by month like the asset.

    A monthly asset's blocking checks are not declared blocking to Dagster: its step reports
    them month by month as evaluations, which Dagster's gating does not see; the step itself
    refuses the batch (:func:`refuse_months`), so nothing downstream runs on a refused month.
    """
    return [
        dg.AssetCheckSpec(
            check.name,
            asset=asset,
            blocking=False,
            description=check.description
            + (" Blocking: a failure refuses the month." if check.blocking else ""),
            partitions_def=MONTHS,
        )
        for check in checks
    ]


def _severity(outcome: Outcome) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN


def _metadata(outcome: Outcome) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "summary": dg.MetadataValue.text(outcome.summary),
        **{
            key: dg.MetadataValue.text(value)
            if isinstance(value, str)
            else dg.MetadataValue.float(float(value))
            for key, value in outcome.numbers.items()
        },
    }
    if outcome.failures is not None and not outcome.failures.empty:
        columns = [str(column) for column in outcome.failures.columns]
        metadata["failures"] = dg.MetadataValue.table(
            records=[
                dg.TableRecord(
                    {column: str(value) for column, value in zip(columns, row, strict=True)}
                )
                for row in outcome.failures.itertuples(index=False)
            ],
            schema=dg.TableSchema(columns=[dg.TableColumn(column, "string") for column in columns]),
        )
    return metadata


def month_evaluations(
    asset: dg.AssetKey, month: str, outcomes: Sequence[Outcome]
) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per outcome, on ``month``'s partition of ``asset``."""
    return [
        dg.AssetCheckEvaluation(
            asset_key=asset,
            check_name=outcome.check,
            passed=outcome.passed,
            severity=_severity(outcome),
            description=outcome.summary,
            metadata=_metadata(outcome),
            blocking=outcome.blocking,
            partition=month,
        )
        for outcome in outcomes
    ]


def _refused(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome.blocking and not outcome.passed]


def _refusal(refused: Sequence[Outcome], kept: str, months: Sequence[str]) -> dg.Failure:
    """The step's failure, not retried: what failed, what was kept, which months."""
    return dg.Failure(
        description="\n".join(outcome.summary for outcome in refused)
        + f"\nNot stored: {kept} (refused: {', '.join(months)}).",
        metadata={
            "failed_checks": ", ".join(dict.fromkeys(outcome.check for outcome in refused)),
            "refused_months": ", ".join(months),
        },
        allow_retries=False,
    )


def refuse_months(outcomes: Mapping[str, Sequence[Outcome]], kept: str) -> None:
    """Fail the step when a blocking check failed on any month of the batch.

    Args:
        outcomes: Each month's outcomes (all of them already reported).
        kept: What stays as it was (named in the failure).

    Raises:
        dg.Failure: Not retried, naming every refused month and what failed in it.
    """
    refused = {month: _refused(month_outcomes) for month, month_outcomes in outcomes.items()}
    months = [month for month, failed in refused.items() if failed]
    if months:
        raise _refusal([o for month in months for o in refused[month]], kept, months)
