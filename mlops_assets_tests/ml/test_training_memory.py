"""The memory design of training: the columns it reads, their dtypes, and the row budget.

Training never holds every month at once: it counts the months' rows from the Parquet
footers, then reads one month at a time, only the model's columns, in compact dtypes, and
keeps the same seeded share of every (month, label) when the months exceed the budget.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from upath import UPath

from mlops_assets.defs.model.training import TrainingConfig, training_data
from mlops_assets.ml.columns import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET
from mlops_assets.ml.promotion import DEPARTURE_COLUMN
from mlops_assets.ml.training import (
    AVERAGED_FEATURES,
    FLOAT32_FEATURES,
    TRAINING_COLUMNS,
    compact_features,
    read_training_months,
    serving_dtypes,
    stratified_sample,
)
from mlops_assets.resources.lake import ParquetIOManager
from mlops_assets.resources.stored_partitions import StoredPartitions

MONTHS = ["2013-01", "2013-02", "2013-03"]


@pytest.fixture
def stored(tmp_path: Path, january_features: pd.DataFrame) -> StoredPartitions:
    """January's real feature rows stored as three partitions (days 1-10, 11-20, 21-31)."""
    lake = ParquetIOManager(UPath(tmp_path))
    days = january_features["sched_dep_utc"].dt.day
    for month, (first, last) in zip(MONTHS, [(1, 10), (11, 20), (21, 31)], strict=True):
        path = tmp_path / "flight_features" / f"{month}.parquet"
        path.parent.mkdir(exist_ok=True)
        january_features[days.between(first, last)].to_parquet(path, index=False)
    return lake.stored_partitions("flight_features", MONTHS)


def test_training_reads_only_the_model_columns_in_compact_dtypes(
    stored: StoredPartitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested: list[tuple[str, list[str] | None]] = []
    read = StoredPartitions.read

    def spy(self: StoredPartitions, partition: str, columns: list[str] | None = None) -> object:
        requested.append((partition, None if columns is None else list(columns)))
        return read(self, partition, columns)

    monkeypatch.setattr(StoredPartitions, "read", spy)
    data = training_data(stored, TrainingConfig())

    # The validation month (the last training month) also brings its departure times: the
    # candidates' comparison resamples its days. They are not kept once months are combined.
    validation = [*TRAINING_COLUMNS, DEPARTURE_COLUMN]
    assert requested == [
        (MONTHS[0], list(TRAINING_COLUMNS)),
        (MONTHS[1], validation),
        (MONTHS[2], list(TRAINING_COLUMNS)),
    ]
    assert list(data.by_month[MONTHS[1]].columns) == validation
    assert data.by_month[MONTHS[1]][DEPARTURE_COLUMN].notna().all()
    for frame in [data.by_month[MONTHS[0]], data.split.train, data.split.holdout]:
        assert list(frame.columns) == list(TRAINING_COLUMNS)  # no keys, no tail numbers
    for frame in [*data.by_month.values(), data.split.train, data.split.holdout]:
        for column in CATEGORICAL_FEATURES:
            assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
        assert {str(frame[column].dtype) for column in FLOAT32_FEATURES} == {"float32"}
        assert {str(frame[column].dtype) for column in AVERAGED_FEATURES} == {"float64"}
        assert frame[TARGET].dtype == "int8"
    full = pd.concat([stored[month] for month in MONTHS[:-1]], ignore_index=True)
    # About 4 times smaller than the stored rows, which carry strings as Python objects (5
    # times before the arrival features, whose six averages stay float64).
    compact_bytes = data.split.train.memory_usage(deep=True).sum()
    assert compact_bytes * 3.5 < full.memory_usage(deep=True).sum()
    assert not data.sample.subsampled and len(data.split.train) == len(full)


def test_float32_holds_the_compacted_features_exactly(january_features: pd.DataFrame) -> None:
    """A value rounded for training but not when served could fall on the other side of a
    split: only the features that survive the round trip unchanged are made float32."""
    assert set(FLOAT32_FEATURES) | set(AVERAGED_FEATURES) == set(NUMERIC_FEATURES)
    served = serving_dtypes(compact_features(january_features))
    pd.testing.assert_frame_equal(served, january_features[list(FEATURE_COLUMNS)])
    rounded = january_features[list(AVERAGED_FEATURES)].astype("float32").astype("float64")
    assert not rounded.equals(january_features[list(AVERAGED_FEATURES)])  # why they stay


def test_the_row_budget_keeps_the_same_share_of_every_month_and_label(
    stored: StoredPartitions,
) -> None:
    available = stored.count_rows(MONTHS[0]) + stored.count_rows(MONTHS[1])
    budget = available // 3
    data = training_data(stored, TrainingConfig(row_budget=budget))

    sample = data.sample
    assert sample.subsampled and sample.available == available
    assert budget - 4 <= sample.kept == len(data.split.train) <= budget
    for month in MONTHS[:-1]:
        whole = stored.read(month, [TARGET])[TARGET]
        kept = data.by_month[month][TARGET]
        assert sample.by_month[month] == (len(whole), len(kept))
        for label in (0, 1):
            share = (kept == label).sum() / (whole == label).sum()
            assert share == pytest.approx(sample.fraction, abs=1 / (whole == label).sum())
    # The held-out month is never sampled: it is what the model is judged on.
    assert len(data.split.holdout) == stored.count_rows(MONTHS[-1])

    again = training_data(stored, TrainingConfig(row_budget=budget))
    pd.testing.assert_frame_equal(again.split.train, data.split.train)
    other = training_data(stored, TrainingConfig(row_budget=budget, random_seed=7))
    assert not other.split.train.equals(data.split.train)


def test_months_are_counted_first_then_read_one_at_a_time(january_features: pd.DataFrame) -> None:
    events: list[str] = []

    def count(month: str) -> int:
        events.append(f"count {month}")
        return len(january_features)

    def read(month: str) -> pd.DataFrame:
        events.append(f"read {month}")
        return january_features

    kept, sample = read_training_months(MONTHS, count, read, budget=10_000, seed=0)
    assert events == [f"count {m}" for m in MONTHS] + [f"read {m}" for m in MONTHS]
    assert sample.kept == sum(len(frame) for frame in kept.values()) <= 10_000


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_a_sample_fraction_outside_zero_to_one_is_refused(
    january_features: pd.DataFrame, fraction: float
) -> None:
    with pytest.raises(ValueError, match=f"sample fraction {fraction!r} is not in"):
        stratified_sample(january_features, fraction, seed=0)


def test_a_budget_below_one_row_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="row_budget"):
        TrainingConfig(row_budget=0)
