"""The data version of frames: what the lake records and MLflow shows as a dataset digest."""

from __future__ import annotations

import pandas as pd

from mlops_assets.defs.shared.lineage import batch_version, frame_version
from mlops_assets.tracking.datasets import MAX_DIGEST_LENGTH


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "carrier": pd.Series(["UA", "AA"], dtype="string"),
            "distance": [1400.0, 733.0],
            "is_delayed": pd.Series([1, 0], dtype="int8"),
        }
    )


def test_equal_frames_have_equal_versions_that_fit_a_digest() -> None:
    version = frame_version(_frame())
    assert version == frame_version(_frame())
    assert len(version) == 32 <= MAX_DIGEST_LENGTH
    assert int(version, 16) >= 0  # hexadecimal


def test_any_changed_value_column_or_type_changes_the_version() -> None:
    base = frame_version(_frame())
    changed_value = _frame()
    changed_value.loc[1, "distance"] = 734.0
    renamed = _frame().rename(columns={"distance": "miles"})
    retyped = _frame().astype({"is_delayed": "int16"})
    reordered = _frame().iloc[::-1].reset_index(drop=True)
    fewer = _frame().head(1)
    versions = [frame_version(f) for f in (changed_value, renamed, retyped, reordered, fewer)]
    assert base not in versions
    assert len(set(versions)) == len(versions)


def test_a_batch_version_follows_its_months_rows_and_the_code_version() -> None:
    january, february = _frame(), _frame().head(1)
    both = batch_version({"2013-01": january, "2013-02": february}, "4")
    assert both == batch_version({"2013-02": february, "2013-01": january}, "4")  # order-free
    assert len(both) == 32
    others = {
        batch_version({"2013-01": january}, "4"),  # one month of the two
        batch_version({"2013-01": february, "2013-02": january}, "4"),  # months swapped
        batch_version({"2013-01": january, "2013-02": february}, "5"),  # code version bumped
    }
    assert both not in others and len(others) == 3
