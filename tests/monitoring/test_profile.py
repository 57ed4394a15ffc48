"""Reference profiles: cells and categories, raw values for small samples, merges add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelworks.errors import InvalidInput
from modelworks.monitoring.drift.profile import (
    RAW_REFERENCE_LIMIT,
    ReferenceProfile,
    counts_in,
    merge,
    profile_reference,
    profile_window,
)


def _frame(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0 + shift, 1.0, size=n)
    amount[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.poisson(2.0, size=n),
            "region": rng.choice(["north", "south", "east", "west"], size=n, p=[.4, .3, .2, .1]),
            "urgent": rng.random(n) < 0.2,
            "created": pd.date_range("2024-01-01", periods=n, freq="min"),
        }
    )


def test_reference_profile_cells_categories_and_skips() -> None:
    df = _frame(5_000, 1)
    df.loc[:2, "amount"] = [np.inf, -np.inf, np.inf]
    profile = profile_reference(df, bins=20)
    assert profile.names == ["amount", "visits", "region", "urgent"]
    assert "created" in profile.skipped
    amount = profile.column("amount")
    assert amount.kind == "numeric" and amount.numeric is not None
    assert amount.count + amount.missing == 5_000
    assert amount.count == int(np.isfinite(df["amount"]).sum())  # ±inf counted as missing
    cells = amount.numeric
    assert len(cells.counts) == len(cells.sums) == 2 * len(cells.edges) + 1
    assert sum(cells.counts) == amount.count
    assert not cells.exact_edges and cells.values is None
    assert cells.edges[0] == cells.min and cells.edges[-1] == cells.max
    assert cells.counts[0] == cells.counts[-1] == 0  # nothing outside the reference's range
    visits = profile.column("visits").numeric
    assert visits is not None and visits.exact_edges  # few distinct values: one edge each
    assert sum(visits.counts[0::2]) == 0  # every value sits on an edge
    region = profile.column("region").categorical
    assert region is not None and region.categories[0] == "north" and region.other == 0
    urgent = profile.column("urgent")
    assert urgent.kind == "categorical" and set(urgent.categorical.categories) == {"True", "False"}  # type: ignore[union-attr]


def test_profiles_are_json_round_trippable() -> None:
    profile = profile_reference(_frame(3_000, 2))
    again = ReferenceProfile.model_validate_json(profile.model_dump_json())
    assert again == profile


def test_small_references_keep_their_values() -> None:
    df = _frame(RAW_REFERENCE_LIMIT, 3)
    amount = profile_reference(df).column("amount").numeric
    assert amount is not None and amount.values is not None and amount.exact_edges
    assert sorted(amount.values) == sorted(df["amount"].dropna().tolist())
    big = profile_reference(_frame(RAW_REFERENCE_LIMIT * 3, 3)).column("amount").numeric
    assert big is not None and big.values is None


def test_window_counts_line_up_and_merging_equals_concatenation() -> None:
    reference = profile_reference(_frame(20_000, 4))
    current = _frame(9_000, 5, shift=0.3)
    current.loc[17, "region"] = "atlantis"  # a category the reference never had
    parts = [current.iloc[:2_000], current.iloc[2_000:2_500], current.iloc[2_500:]]
    whole = profile_window(reference, current)
    merged = profile_window(reference, parts[0])
    for part in parts[1:]:
        merged = merge(merged, profile_window(reference, part))
    assert merged.rows == whole.rows == 9_000
    for a, b in zip(merged.columns, whole.columns, strict=True):
        assert (a.count, a.missing) == (b.count, b.missing)
        if a.numeric is not None and b.numeric is not None:
            assert a.numeric.counts == b.numeric.counts
            assert a.numeric.edges == b.numeric.edges
            np.testing.assert_allclose(a.numeric.sums, b.numeric.sums, rtol=1e-9, atol=1e-6)
            assert a.numeric.mean == pytest.approx(b.numeric.mean, rel=1e-12)
            assert a.numeric.m2 == pytest.approx(b.numeric.m2, rel=1e-9)
            assert (a.numeric.min, a.numeric.max) == (b.numeric.min, b.numeric.max)
            assert a.numeric.values == b.numeric.values  # kept: 9,000 <= 10,000
        else:
            assert a.categorical == b.categorical
    region = whole.column("region").categorical
    assert region is not None and region.unseen == {"atlantis": 1}


def test_counts_in_the_reference_itself_reproduces_the_reference() -> None:
    df = _frame(8_000, 6)
    reference = profile_reference(df)
    for column in reference.columns:
        again = counts_in(column, df[column.name])
        if column.numeric is not None:
            assert again.numeric is not None and again.numeric.counts == column.numeric.counts
        else:
            assert again.categorical is not None and column.categorical is not None
            assert again.categorical.counts == column.categorical.counts


def test_novel_values_of_a_discrete_column_are_tracked_one_by_one() -> None:
    reference = profile_reference(pd.DataFrame({"flag": [0, 1] * 1_000}))
    window = profile_window(reference, pd.DataFrame({"flag": [0, 1, 2, 2, 0.5]}))
    cells = window.column("flag").numeric
    assert cells is not None
    assert cells.novel_values == [0.5, 2.0] and cells.novel_counts == [1, 2]
    wide = profile_window(reference, pd.DataFrame({"flag": np.linspace(3, 4, 50)}))
    assert wide.column("flag").numeric.novel_overflow  # type: ignore[union-attr]


def test_categories_past_the_cap_go_to_other() -> None:
    df = pd.DataFrame({"code": [f"c{i % 30}" for i in range(3_000)] + ["c0"] * 100})
    column = profile_reference(df, max_categories=10).column("code").categorical
    assert column is not None
    assert len(column.categories) == 10 and column.categories[0] == "c0"
    assert sum(column.counts) + column.other == 3_100
    window = profile_window(
        profile_reference(df, max_categories=10), pd.DataFrame({"code": ["c29", "new"]})
    ).column("code").categorical
    # the reference dropped rare codes, so a name it lacks may be one of them: "other"
    assert window is not None and window.unseen == {} and window.other == 2


def test_bad_input_is_an_invalid_input_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as empty:
        profile_reference(pd.DataFrame({"x": []}))
    assert empty.value.field == "reference"
    with pytest.raises(InvalidInput) as absent:
        profile_reference(pd.DataFrame({"x": [1.0]}), columns=["x", "y"])
    assert absent.value.field == "columns"
    with pytest.raises(InvalidInput) as nothing:
        profile_reference(pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3)}))
    assert nothing.value.field == "reference"
    reference = profile_reference(pd.DataFrame({"x": np.arange(50.0)}))
    with pytest.raises(InvalidInput) as text:
        profile_window(reference, pd.DataFrame({"x": ["a", "b"]}))
    assert text.value.field == "x" and "numeric in the reference" in str(text.value)
    other = profile_reference(pd.DataFrame({"x": np.arange(50.0) * 2}))
    with pytest.raises(InvalidInput) as clash:
        merge(profile_window(reference, pd.DataFrame({"x": [1.0]})),
              profile_window(other, pd.DataFrame({"x": [1.0]})))
    assert clash.value.field == "edges"
    with pytest.raises(InvalidInput):
        merge(reference, profile_window(reference, pd.DataFrame({"x": [1.0]})))


def test_numbers_held_as_objects_are_read_as_numbers() -> None:
    reference = profile_reference(pd.DataFrame({"x": np.arange(50.0)}))
    window = profile_window(reference, pd.DataFrame({"x": pd.Series([1, 2.5, None], dtype=object)}))
    column = window.column("x")
    assert (column.count, column.missing) == (2, 1)


def test_column_labels_are_named_as_strings_and_duplicates_are_refused() -> None:
    df = pd.DataFrame({0: np.arange(30.0), 1: ["a", "b", "c"] * 10})
    profile = profile_reference(df)
    assert profile.names == ["0", "1"]
    assert profile_window(profile, df).column("0").count == 30
    with pytest.raises(InvalidInput) as caught:
        profile_reference(pd.DataFrame([[1, 2]], columns=["x", "x"]))
    assert caught.value.field == "reference" and "'x'" in str(caught.value)
