"""The drift measure on hand-made frames whose PSI is known, and the check's verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlops_assets.ml import drift
from mlops_assets.ml.columns import CATEGORICAL_FEATURES, NUMERIC_FEATURES

LN2 = math.log(2)


def test_psi_of_identical_shares_is_zero_and_of_a_known_shift_is_the_formula() -> None:
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    # (0.75 - 0.5) ln(0.75 / 0.5) + (0.25 - 0.5) ln(0.25 / 0.5)
    assert drift.psi([0.5, 0.5], [0.75, 0.25]) == pytest.approx(
        0.25 * math.log(1.5) + 0.25 * LN2, abs=1e-12
    )
    # An empty bin counts as EPSILON: finite, and large when the reference filled it.
    empty = drift.psi([0.5, 0.5], [1.0, 0.0])
    assert empty == pytest.approx(0.5 * LN2 + (drift.EPSILON - 0.5) * math.log(drift.EPSILON / 0.5))
    with pytest.raises(ValueError, match="2 expected shares against 3"):
        drift.psi([0.5, 0.5], [0.2, 0.3, 0.5])


def test_numeric_bins_are_the_reference_deciles_with_open_outer_edges() -> None:
    profile = drift.profile_numeric("x", np.arange(100, dtype="float64"))
    # Deciles of 0..99 (linear interpolation): 9.9, 19.8, ..., 89.1; ten bins of ten values.
    assert profile.edges == pytest.approx([9.9 * k for k in range(1, 10)])
    assert profile.shares == pytest.approx([0.1] * 10)
    assert profile.missing_share == 0.0
    same = drift.numeric_drift(profile, np.arange(100, dtype="float64"))
    assert same.psi == 0.0 and same.bins == 11  # ten bins and the missing-value bin
    # Far outside the reference: everything lands in the outer bins, which are open.
    outside = drift.numeric_drift(profile, np.array([-1e9] * 50 + [1e9] * 50))
    assert outside.psi > 5


def test_a_known_numeric_shift() -> None:
    profile = drift.profile_numeric("x", np.arange(100, dtype="float64"))
    # The lower half only: five bins at 20%, five empty (EPSILON) where the reference had 10%.
    shifted = drift.numeric_drift(profile, np.arange(50, dtype="float64"))
    expected = 5 * (0.2 - 0.1) * math.log(0.2 / 0.1) + 5 * (drift.EPSILON - 0.1) * math.log(
        drift.EPSILON / 0.1
    )
    assert shifted.psi == pytest.approx(expected, rel=1e-12)
    assert shifted.psi == pytest.approx(3.79700, abs=1e-5)


def test_missing_values_are_a_bin_of_their_own() -> None:
    reference = np.array([1.0, 2.0, 3.0, 4.0, np.nan, np.nan, np.nan, np.nan])
    profile = drift.profile_numeric("visib", reference, bins=2)
    assert profile.missing_share == 0.5
    assert sum(profile.shares) + profile.missing_share == pytest.approx(1.0)
    # The same values, the feed now never missing: 100% present against 50%.
    complete = drift.numeric_drift(profile, np.array([1.0, 2.0, 3.0, 4.0]))
    assert complete.month_missing_share == 0.0
    assert complete.psi == pytest.approx(
        2 * (0.5 - 0.25) * LN2 + (drift.EPSILON - 0.5) * math.log(drift.EPSILON / 0.5)
    )


def test_tied_quantiles_merge_into_fewer_bins() -> None:
    mostly_zero = np.array([0.0] * 95 + [1.0, 2.0, 3.0, 4.0, 5.0])
    profile = drift.profile_numeric("precip", mostly_zero)
    assert profile.edges == (0.0,)  # every decile is 0: (-inf, 0] and (0, inf)
    assert profile.shares == pytest.approx([0.95, 0.05])
    assert drift.numeric_drift(profile, mostly_zero).psi == 0.0


def test_categorical_shares_and_unseen_categories_pooled() -> None:
    profile = drift.profile_categorical("carrier", pd.Series(["UA", "UA", "B6", "B6", None, "AA"]))
    assert profile.categories == ("B6", "UA", "AA")  # most frequent first, ties by name
    assert profile.shares == pytest.approx([2 / 6, 2 / 6, 1 / 6])
    assert profile.missing_share == pytest.approx(1 / 6)
    assert drift.categorical_drift(profile, ["AA", "UA", None, "B6", "UA", "B6"]).psi == 0.0

    half = drift.profile_categorical("origin", ["EWR", "JFK"])
    moved = drift.categorical_drift(half, ["EWR", "EWR", "EWR", "JFK"])
    assert moved.psi == pytest.approx(0.25 * math.log(1.5) + 0.25 * LN2, abs=1e-12)
    # Two categories the reference never saw share one bin (expected share EPSILON).
    unseen = drift.categorical_drift(half, ["EWR", "JFK", "LGA", "XYZ"])
    e = drift.EPSILON
    assert unseen.bins == 4  # EWR, JFK, unseen, missing
    assert unseen.psi == pytest.approx(
        2 * (0.25 - 0.5) * math.log(0.5) + (0.5 - e) * math.log(0.5 / e)
    )


def _frame(
    rows: int, seed: int, temp_shift: float = 0.0, carrier: str | None = None
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=rows) for c in NUMERIC_FEATURES})
    for column in CATEGORICAL_FEATURES:
        frame[column] = rng.choice(["a", "b", "c"], size=rows).astype(object)
    frame["temp"] += temp_shift
    if carrier is not None:
        frame["carrier"] = carrier
    return frame


def test_a_month_like_the_reference_is_stable_and_a_shifted_one_fails() -> None:
    train = _frame(20_000, seed=1)
    scores = np.random.default_rng(2).uniform(size=5_000)
    reference = drift.build_reference(
        train,
        months=["2013-02", "2013-01"],
        numeric=NUMERIC_FEATURES,
        categorical=CATEGORICAL_FEATURES,
        scores=scores,
    )
    assert reference.months == ("2013-01", "2013-02")
    assert drift.DriftReference.from_json(reference.to_json()) == reference

    identical = drift.measure_drift(reference, train, scores)
    assert identical.max_psi == pytest.approx(0.0, abs=1e-12)
    assert [e.feature for e in identical.features] == [*CATEGORICAL_FEATURES, *NUMERIC_FEATURES]
    assert identical.prediction is not None and identical.prediction.kind == "prediction"

    # Another draw of the same distributions: sampling noise only, far below 0.1.
    fresh = drift.measure_drift(
        reference, _frame(5_000, seed=3), np.random.default_rng(4).uniform(size=5_000)
    )
    assert fresh.max_psi < 0.02
    thresholds = drift.DriftThresholds()
    assert drift.judge(fresh.to_frame(thresholds)).outcome == "ok"

    shifted_month = _frame(5_000, seed=3, temp_shift=3.0, carrier="a")
    shifted = drift.measure_drift(
        reference, shifted_month, np.random.default_rng(4).uniform(size=5_000) ** 3
    )
    table = shifted.to_frame(thresholds)
    assert set(table["feature"][:3]) == {"temp", "carrier", "delay_probability"}
    assert (table["psi"].diff().dropna() <= 0).all()  # largest first
    status = dict(zip(table["feature"], table["status"], strict=True))
    assert status["temp"] == status["carrier"] == status["delay_probability"] == "fail"
    assert status["distance"] == "ok"
    verdict = drift.judge(table)
    assert verdict.outcome == "fail"
    # temp is seasonal: shown as failing, but only carrier and the prediction fail the check.
    assert set(verdict.failing) == {"carrier", "delay_probability"}
    assert "temp" in verdict.describe() and "seasonal" in verdict.describe()

    # With only a seasonal feature moved, the check warns.
    only_weather = drift.measure_drift(reference, _frame(5_000, seed=3, temp_shift=3.0), scores)
    weather_verdict = drift.judge(only_weather.to_frame(thresholds))
    assert weather_verdict.outcome == "warn" and weather_verdict.failing == ()
    # Unless the seasonal list is emptied.
    assert drift.judge(only_weather.to_frame(thresholds, seasonal=())).failing == ("temp",)


def test_thresholds_classify_and_refuse_an_inverted_pair() -> None:
    thresholds = drift.DriftThresholds()
    assert (thresholds.warn, thresholds.fail) == (0.1, 0.25)
    assert [thresholds.status(v) for v in (0.0, 0.1, 0.11, 0.25, 0.26)] == [
        "ok",
        "ok",
        "warn",
        "warn",
        "fail",
    ]
    with pytest.raises(ValueError, match="warn <= fail"):
        drift.DriftThresholds(warn=0.3, fail=0.2)


def test_bad_months_are_refused() -> None:
    reference = drift.build_reference(
        pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}),
        months=["2013-01"],
        numeric=["x"],
        categorical=["c"],
    )
    with pytest.raises(ValueError, match=r"the month has no column\(s\) \['c'\]"):
        drift.measure_drift(reference, pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match="no rows"):
        drift.measure_drift(reference, pd.DataFrame({"x": [], "c": []}))
    with pytest.raises(ValueError, match=r"the training rows have no column\(s\) \['c'\]"):
        drift.build_reference(
            pd.DataFrame({"x": [1.0]}), months=["2013-01"], numeric=["x"], categorical=["c"]
        )


def test_scores_are_required_when_the_reference_profiled_them() -> None:
    reference = drift.build_reference(
        pd.DataFrame({"x": [1.0, 2.0]}),
        months=["2013-01"],
        numeric=["x"],
        categorical=[],
        scores=np.array([0.1, 0.2]),
    )
    with pytest.raises(ValueError, match="pass the month's scores"):
        drift.measure_drift(reference, pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match="not a drift reference"):
        drift.DriftReference.from_json('{"months": []}')
    with pytest.raises(ValueError, match="not a drift table"):
        drift.judge(pd.DataFrame({"feature": ["x"]}))


def test_score_samples_are_seeded_and_never_larger_than_the_frame() -> None:
    frame = pd.DataFrame({"x": np.arange(100)})
    assert drift.sample_rows(frame, 1_000, seed=0) is frame
    first = drift.sample_rows(frame, 10, seed=7)
    assert len(first) == 10 and first.equals(drift.sample_rows(frame, 10, seed=7))
    scored: list[int] = []

    def predict_proba(rows: pd.DataFrame) -> np.ndarray:
        scored.append(len(rows))
        return np.full(len(rows), 0.5)

    reference = drift.profile_training_window(
        pd.concat([_frame(300, seed=5)] * 2, ignore_index=True),
        ["2013-01"],
        predict_proba,
        seed=0,
        rows=100,
    )
    assert scored == [100] and reference.prediction_rows == 100 and reference.rows == 600
    assert reference.prediction is not None and reference.prediction.shares == (1.0, 0.0)
