"""Data quality checks: exact counts on hand-made frames, and chunks that add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelworks.errors import InvalidInput
from modelworks.monitoring.drift.profile import merge, profile_reference, profile_window
from modelworks.monitoring.quality import (
    CHECKS,
    QualityCounter,
    QualityResult,
    conform,
    quality_result,
)


def _reference() -> pd.DataFrame:
    return pd.DataFrame({
        "num": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "cat": ["a", "b", "a", "b", "c", "a", "b", "c", "a", "b"],
        "flag": ["x", "y"] * 5,
        "const": [5.0] * 10,
        "gone": np.arange(10.0),
    })


def _window() -> pd.DataFrame:
    return pd.DataFrame({
        "num": pd.Series([0, 3, "oops", None, 11, 12, 5, 5], dtype=object),
        "cat": ["a", "z", "z", "b", None, "q", "a", "a"],
        "flag": ["x"] * 8,
        "const": [5.0, 5, 5, 5, 6, 5, 5, 5],
        "extra": range(8),  # not in the reference: ignored
    })


def _check(frames: list[pd.DataFrame], reference: pd.DataFrame | None = None,
           **kwargs: object) -> QualityResult:
    ref = profile_reference(_reference() if reference is None else reference)
    counter = QualityCounter()
    window = None
    for frame in frames:
        chunk = conform(ref, frame)
        counter.add(chunk)
        part = profile_window(ref, chunk.frame)
        window = part if window is None else merge(window, part)
    assert window is not None
    window = window.model_copy(update={
        "columns": [c for c in window.columns if c.name in counter.present]})
    return quality_result(ref, window, counter, **kwargs)  # type: ignore[arg-type]


def test_counts_are_exact_on_a_hand_made_frame() -> None:
    result = _check([_window().assign(gone=np.arange(8.0))])
    assert result.rows == 8
    num = {c.check: c for c in result.checks if c.column == "num"}
    assert set(num) == {"schema_violation", "missing_rate_jump", "out_of_range",
                        "constant_column"}
    assert (num["schema_violation"].count, num["schema_violation"].flagged) == (1, True)
    assert num["schema_violation"].values == {"wrong_type": 1}
    # "oops" is a wrong type, not a missing value as well: one missing (None)
    assert (num["missing_rate_jump"].count, num["missing_rate_jump"].rate) == (1, 1 / 8)
    assert num["missing_rate_jump"].reference_rate == 0.0
    assert not num["missing_rate_jump"].flagged  # 1 of 8 is not a significant rise
    assert num["out_of_range"].values == {"below": 1, "above": 2}
    assert (num["out_of_range"].count, num["out_of_range"].rate) == (3, 3 / 8)
    assert not num["constant_column"].flagged

    cat = {c.check: c for c in result.checks if c.column == "cat"}
    assert "out_of_range" not in cat
    assert cat["unseen_category"].count == 3 and cat["unseen_category"].values == {"z": 2,
                                                                                   "q": 1}
    assert cat["missing_rate_jump"].count == 1 and cat["schema_violation"].count == 0

    flag = result.check("flag", "constant_column")
    assert flag.flagged and flag.count == 8 and "one value (x)" in flag.detail
    const = result.check("const", "constant_column")
    assert not const.flagged and "reference is constant" in const.detail
    assert result.check("const", "out_of_range").values == {"below": 0, "above": 1}
    assert not any(c.flagged for c in result.checks if c.column == "gone")

    # rows with an error: 1 (unseen z), 2 (text in num and unseen z), 5 (unseen q)
    assert (result.error_rows, result.error_rate) == (3, 3 / 8)


def test_a_missing_column_is_a_schema_violation_of_every_row() -> None:
    result = _check([_window()])
    gone = [c for c in result.checks if c.column == "gone"]
    assert len(gone) == 1 and gone[0].check == "schema_violation"
    assert (gone[0].count, gone[0].rate, gone[0].flagged) == (8, 1.0, True)
    assert gone[0].values == {"missing_column": 8}
    assert (result.error_rows, result.error_rate) == (8, 1.0)
    # not required (a column the caller does not expect): no violation
    lenient = _check([_window()], required=["num", "cat", "flag", "const"])
    assert not [c for c in lenient.checks if c.column == "gone"]
    assert lenient.error_rows == 3


def test_chunks_add_up_to_the_whole_window() -> None:
    frame = _window().assign(gone=np.arange(8.0))
    whole = _check([frame])
    parts = _check([frame.iloc[:3], frame.iloc[3:5], frame.iloc[5:]])
    assert parts == whole
    # a column absent from one chunk counts as missing there, present overall
    split = _check([frame.iloc[:4], frame.iloc[4:].drop(columns=["gone"])])
    assert split.check("gone", "missing_rate_jump").count == 4
    assert not split.check("gone", "schema_violation").flagged


def test_counters_merge_like_chunks() -> None:
    ref = profile_reference(_reference())
    a, b = conform(ref, _window().iloc[:4]), conform(ref, _window().iloc[4:])
    left, right, both = QualityCounter(), QualityCounter(), QualityCounter()
    left.add(a)
    right.add(b)
    both.add(a)
    both.add(b)
    assert left.merge(right) == both
    assert both.wrong == {"num": 1} and both.error_rows == 3
    assert both.present == {"num", "cat", "flag", "const"}
    # take() keeps the row-level findings with their rows
    picked = a.take(np.array([False, True, True, False]))
    assert list(picked.errors) == [True, True] and list(picked.wrong["num"]) == [False, True]


def test_a_significant_missing_rate_jump_is_flagged() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"v": rng.normal(size=1_000)})
    current = pd.DataFrame({"v": rng.normal(size=400)})
    current.loc[:99, "v"] = np.nan  # 25% missing, reference 0%
    result = _check([current], reference=reference)
    jump = result.check("v", "missing_rate_jump")
    assert jump.flagged and jump.count == 100 and jump.rate == 0.25
    assert "z-test" in jump.detail
    assert not _check([current], reference=reference, missing_jump=0.3).check(
        "v", "missing_rate_jump").flagged
    with pytest.raises(InvalidInput) as info:
        _check([current], reference=reference, missing_jump=2.0)
    assert info.value.field == "missing_jump"


def test_unseen_is_unknown_when_the_reference_kept_its_top_categories() -> None:
    reference = pd.DataFrame({"c": list("aaabbc")})
    ref = profile_reference(reference, max_categories=2)
    chunk = conform(ref, pd.DataFrame({"c": list("abz")}))
    counter = QualityCounter()
    counter.add(chunk)
    result = quality_result(ref, profile_window(ref, chunk.frame), counter)
    unseen = result.check("c", "unseen_category")
    assert unseen.count == 0 and not unseen.flagged and "most frequent" in unseen.detail
    assert result.error_rows == 0


def test_objects_in_a_categorical_column_are_wrong_types() -> None:
    ref = profile_reference(pd.DataFrame({"c": list("abab")}))
    chunk = conform(ref, pd.DataFrame({"c": pd.Series(["a", ["x"], {"k": 1}, "b"],
                                                      dtype=object)}))
    counter = QualityCounter()
    counter.add(chunk)
    result = quality_result(ref, profile_window(ref, chunk.frame), counter)
    assert result.check("c", "schema_violation").count == 2
    assert result.check("c", "missing_rate_jump").count == 0
    assert result.error_rows == 2


def test_metrics_keys() -> None:
    result = _check([_window().assign(gone=np.arange(8.0))])
    keys = result.metrics()
    assert keys["quality.error_rate"] == 3 / 8 and keys["quality.errors"] == 3
    assert {f"quality.{c}.count" for c in CHECKS} <= set(keys)
    assert keys["quality.schema_violation.count"] == 1
    assert keys["quality.unseen_category.count"] == 3
    assert keys["quality.constant_column.count"] == 8  # the values of the flagged column
    assert keys["quality.missing_rate_jump.count"] == 0  # no jump flagged
    assert keys["quality.column.num.out_of_range.rate"] == 3 / 8
    with pytest.raises(InvalidInput):
        result.check("num", "unseen_category")
