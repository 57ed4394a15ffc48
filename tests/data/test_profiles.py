from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from modelworks.data.profiles import (
    CategoricalSummary,
    ColumnProfile,
    DatasetProfile,
    NumericSummary,
    merge_columns,
    merge_profiles,
    profile_column,
    profile_frame,
)
from modelworks.errors import InvalidInput


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 10_000
    x = rng.normal(loc=3.0, scale=2.0, size=n)
    x[rng.random(n) < 0.05] = np.nan
    x[:3] = [np.inf, -np.inf, np.inf]
    colour = rng.choice(
        ["red", "green", "blue", "cyan", "black"], size=n, p=[0.4, 0.3, 0.2, 0.06, 0.04]
    )
    return pd.DataFrame(
        {
            "x": x,
            "n": rng.integers(0, 50, size=n),
            "colour": pd.Series(colour).mask(rng.random(n) < 0.02),
            "flag": rng.random(n) < 0.3,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )


def _non_missing(column: ColumnProfile) -> int:
    return column.count - column.missing


def test_bin_counts_cover_every_non_missing_value(frame: pd.DataFrame) -> None:
    profile = profile_frame(frame)
    assert profile.rows == len(frame)
    for column in profile.columns:
        if column.numeric is not None:
            summary = column.numeric
            binned = sum(summary.bin_counts) + summary.below + summary.above
            assert binned == _non_missing(column), column.name
            assert len(summary.bin_counts) == len(summary.bin_edges) - 1
        else:
            assert column.categorical is not None
            summary_c = column.categorical
            assert sum(summary_c.counts.values()) + summary_c.other_count == _non_missing(column)
    x = profile.column("x")
    assert x.missing == int(frame["x"].isna().sum())


def test_numeric_moments_and_quantile_edges(frame: pd.DataFrame) -> None:
    summary = profile_column(frame["x"], bins=4).numeric
    assert summary is not None
    finite = frame["x"][np.isfinite(frame["x"])]
    assert summary.count == len(finite)
    assert summary.mean == pytest.approx(finite.mean(), abs=1e-12)
    assert summary.std == pytest.approx(finite.std(ddof=1), abs=1e-12)
    assert summary.min == finite.min()
    assert summary.max == finite.max()
    assert summary.bin_edges[0] == finite.min()
    assert summary.bin_edges[-1] == finite.max()
    assert summary.bin_edges[1:-1] == pytest.approx(np.quantile(finite, [0.25, 0.5, 0.75]).tolist())
    # quartiles: every bin holds about a quarter of the finite values
    for count in summary.bin_counts:
        assert abs(count - len(finite) / 4) <= 2


def test_infinities_are_binned_outside_and_kept_out_of_moments() -> None:
    series = pd.Series([1.0, 2.0, 3.0, np.inf, -np.inf, np.inf, np.nan])
    column = profile_column(series)
    assert column.missing == 1
    summary = column.numeric
    assert summary is not None
    assert (summary.count, summary.mean, summary.min, summary.max) == (3, 2.0, 1.0, 3.0)
    assert summary.std == pytest.approx(1.0)
    assert (summary.below, summary.above) == (1, 2)
    assert sum(summary.bin_counts) == 3
    assert all(math.isfinite(edge) for edge in summary.bin_edges)


def test_only_infinities_and_all_missing() -> None:
    summary = profile_column(pd.Series([np.inf, -np.inf, np.nan])).numeric
    assert summary is not None
    assert (summary.count, summary.below, summary.above, summary.bin_edges) == (0, 1, 1, [])
    assert summary.min is None and summary.std == 0.0
    empty = profile_column(pd.Series([np.nan, np.nan]))
    assert empty.missing == 2 and empty.numeric is not None and empty.numeric.count == 0


def test_given_edges_bins_are_half_open_but_last_is_closed() -> None:
    series = pd.Series([-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    summary = profile_column(series, edges=[0.0, 1.0, 2.0]).numeric
    assert summary is not None
    assert summary.bin_edges == [0.0, 1.0, 2.0]
    assert summary.bin_counts == [2, 3]
    assert (summary.below, summary.above) == (1, 1)


def test_constant_column_gets_one_closed_bin() -> None:
    summary = profile_column(pd.Series([5, 5, 5])).numeric
    assert summary is not None
    assert summary.bin_edges == [5.0, 5.0]
    assert summary.bin_counts == [3]


def test_bad_options_are_invalid_input() -> None:
    series = pd.Series([1.0, 2.0])
    with pytest.raises(InvalidInput) as error:
        profile_column(series, bins=0)
    assert error.value.field == "bins"
    with pytest.raises(InvalidInput) as error:
        profile_column(series, edges=[2.0, 1.0])
    assert error.value.field == "edges"
    with pytest.raises(InvalidInput) as error:
        profile_column(series, edges=[1.0])
    assert error.value.field == "edges"
    with pytest.raises(InvalidInput) as error:
        profile_column(series, top_k=-1)
    assert error.value.field == "top_k"


def test_categorical_top_k_and_other() -> None:
    values = ["a"] * 5 + ["d"] * 3 + ["c"] * 3 + ["b"] * 3 + ["e"] + [None] * 2
    column = profile_column(pd.Series(values), top_k=2)
    assert column.kind == "categorical"
    assert column.missing == 2
    summary = column.categorical
    assert summary is not None
    assert summary.counts == {"a": 5, "b": 3}  # the tie at 3 goes to the first name
    assert list(summary.counts) == ["a", "b"]
    assert summary.other_count == 7
    assert summary.distinct == 5
    # counts are ordered largest first, ties by name, so the JSON of equal data is equal
    tied = profile_column(pd.Series(["c", "b", "a", "b", "c", "a"])).categorical
    assert tied is not None
    assert list(tied.counts) == ["a", "b", "c"]


def test_booleans_and_categoricals_count_as_strings() -> None:
    flags = profile_column(pd.Series([True, False, True, None], dtype="boolean"))
    assert flags.kind == "boolean"
    assert flags.categorical is not None
    assert flags.categorical.counts == {"True": 2, "False": 1}
    codes = pd.Series(pd.Categorical([1, 2, 2, None], categories=[1, 2, 3]))
    summary = profile_column(codes).categorical
    assert summary is not None
    assert summary.counts == {"2": 2, "1": 1}  # unused category 3 is not a value
    assert summary.distinct == 2


def test_datetimes_are_summarised_in_epoch_seconds() -> None:
    series = pd.Series(pd.to_datetime(["1970-01-01 00:00:10", "1970-01-01 00:00:30", None]))
    column = profile_column(series)
    assert column.kind == "datetime"
    assert column.missing == 1
    assert column.numeric is not None
    assert (column.numeric.min, column.numeric.max, column.numeric.mean) == (10.0, 30.0, 20.0)
    aware = profile_column(series.dt.tz_localize("Europe/Paris")).numeric
    assert aware is not None and aware.min == 10.0 - 3600.0


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(np.arange(1000) * 7 + 12345),
        pd.Series([f"user-{i:05d}" for i in range(1000)]),
        pd.Series([f"user-{i:05d}" for i in range(1000)], dtype=object),
    ],
)
def test_identifier_columns_keep_no_values(values: pd.Series) -> None:
    column = profile_column(values.rename("user_id"))
    assert column.is_identifier
    if column.numeric is not None:
        summary = column.numeric
        assert (summary.min, summary.max, summary.bin_edges, summary.bin_counts) == (
            None,
            None,
            [],
            [],
        )
    else:
        assert column.categorical is not None
        assert column.categorical.counts == {}
        assert column.categorical.other_count == 1000
        assert column.categorical.distinct == 1000
    dumped = column.model_dump_json()
    assert "user-" not in dumped
    assert "12345" not in dumped


def test_measurements_and_short_columns_are_not_identifiers() -> None:
    rng = np.random.default_rng(0)
    assert not profile_column(pd.Series(rng.normal(size=1000))).is_identifier
    assert not profile_column(pd.Series([f"u{i}" for i in range(19)])).is_identifier
    assert not profile_column(pd.Series(rng.integers(0, 10, size=1000))).is_identifier
    assert profile_column(pd.Series([f"u{i}" for i in range(20)])).is_identifier


def test_merge_of_halves_equals_whole(frame: pd.DataFrame) -> None:
    whole = profile_frame(frame, top_k=50)
    first = profile_frame(frame.iloc[:3000], top_k=50, reference=whole)
    second = profile_frame(frame.iloc[3000:], top_k=50, reference=whole)
    merged = merge_profiles(first, second)
    assert merged.rows == whole.rows
    for expected in whole.columns:
        got = merged.column(expected.name)
        assert (got.count, got.missing, got.kind) == (
            expected.count,
            expected.missing,
            expected.kind,
        )
        if expected.numeric is not None:
            assert got.numeric is not None
            assert got.numeric.bin_edges == expected.numeric.bin_edges
            assert got.numeric.bin_counts == expected.numeric.bin_counts
            assert (got.numeric.below, got.numeric.above) == (
                expected.numeric.below,
                expected.numeric.above,
            )
            assert got.numeric.count == expected.numeric.count
            assert got.numeric.mean == pytest.approx(expected.numeric.mean, rel=1e-9, abs=1e-9)
            assert got.numeric.std == pytest.approx(expected.numeric.std, rel=1e-9, abs=1e-9)
            assert (got.numeric.min, got.numeric.max) == (
                expected.numeric.min,
                expected.numeric.max,
            )
        else:
            assert got.categorical == expected.categorical


def test_merge_is_commutative_and_associative_for_counts(frame: pd.DataFrame) -> None:
    reference = profile_frame(frame)
    a, b, c = (
        profile_frame(part, reference=reference)
        for part in (frame.iloc[:2000], frame.iloc[2000:7000], frame.iloc[7000:])
    )
    left = merge_profiles(merge_profiles(a, b), c)
    right = merge_profiles(a, merge_profiles(c, b))
    for one, other in zip(left.columns, right.columns, strict=True):
        assert (one.count, one.missing) == (other.count, other.missing)
        if one.numeric is not None and other.numeric is not None:
            assert one.numeric.bin_counts == other.numeric.bin_counts
            assert one.numeric.count == other.numeric.count
            assert one.numeric.mean == pytest.approx(other.numeric.mean, rel=1e-12)
        else:
            assert one.categorical == other.categorical


def test_categorical_merge_keeps_top_k_and_moves_the_rest_to_other() -> None:
    a = profile_column(pd.Series(["x"] * 4 + ["y"] * 3 + ["z"]), top_k=2)
    b = profile_column(pd.Series(["z"] * 5 + ["y"] + ["w"] * 2), top_k=2)
    merged = merge_columns(a, b).categorical
    assert merged is not None
    # a keeps x:4 y:3 (z:1 in other), b keeps z:5 w:2 (y:1 in other); merged: z:5 x:4 y:3 w:2
    assert merged.counts == {"z": 5, "x": 4}
    assert merged.other_count == 16 - 9
    assert merged.distinct == 4  # a lower bound: every name in a or b's counts was seen
    assert merged.top_k == 2


def test_merge_with_different_edges_is_invalid_input() -> None:
    a = profile_column(pd.Series([1.0, 2.0, 3.0], name="price"))
    b = profile_column(pd.Series([10.0, 20.0, 30.0], name="price"))
    with pytest.raises(InvalidInput, match=r"'price'.*binned differently") as error:
        merge_columns(a, b)
    assert error.value.field == "bin_edges"
    with pytest.raises(InvalidInput, match="binned differently"):
        merge_profiles(DatasetProfile(rows=3, columns=[a]), DatasetProfile(rows=3, columns=[b]))


def test_merge_of_different_kinds_or_names_is_invalid_input() -> None:
    numbers = profile_column(pd.Series([1.0, 2.0], name="v"))
    words = profile_column(pd.Series(["a", "b"], name="v"))
    with pytest.raises(InvalidInput, match="'v'"):
        merge_columns(numbers, words)
    with pytest.raises(InvalidInput):
        merge_columns(numbers, numbers.model_copy(update={"name": "w"}))


def test_merge_with_an_identifier_keeps_no_values() -> None:
    ids = [f"id{i}" for i in range(100)]
    reference = profile_frame(pd.DataFrame({"user": ids}))
    assert reference.column("user").is_identifier
    # a small window would not be detected on its own; the reference's verdict carries over
    window = profile_frame(pd.DataFrame({"user": ["id1", "id2"]}), reference=reference)
    assert window.column("user").is_identifier
    plain = profile_column(pd.Series(["id1", "id2"], name="user"))
    merged = merge_columns(reference.column("user"), plain)
    assert merged.is_identifier
    assert merged.categorical == CategoricalSummary(
        counts={}, other_count=102, distinct=100, top_k=20
    )


def test_reference_edges_are_reused_and_new_columns_profiled(frame: pd.DataFrame) -> None:
    reference = profile_frame(frame[["x"]], bins=5)
    reference_x = reference.column("x").numeric
    assert reference_x is not None
    window = profile_frame(frame.iloc[:100], bins=5, reference=reference)
    own = profile_column(frame["x"].iloc[:100], edges=reference_x.bin_edges)
    assert window.column("x").numeric == own.numeric
    window_n = window.column("n").numeric  # not in the reference: its own quantile edges
    assert window_n is not None
    assert window_n.bin_edges[0] == frame["n"].iloc[:100].min()


def test_unknown_column_is_invalid_input(frame: pd.DataFrame) -> None:
    profile = profile_frame(frame)
    with pytest.raises(InvalidInput, match=r"'nope'.*'x'") as error:
        profile.column("nope")
    assert error.value.field == "column"


def test_json_round_trip_gives_an_equal_profile(frame: pd.DataFrame) -> None:
    profile = profile_frame(frame.assign(user=[f"u{i}" for i in range(len(frame))]))
    text = profile.model_dump_json()
    again = DatasetProfile.model_validate_json(text)
    assert again == profile
    assert isinstance(again.column("x").numeric, NumericSummary)
    assert '"std"' in text  # computed, so readers of the JSON see it
