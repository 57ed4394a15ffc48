"""Reference profiles for drift: per column, counts in reference cells or categories.

A numeric column keeps its reference edges (every distinct value when there are few, else
reference quantiles) and, per cell of :mod:`~modelworks.monitoring.drift.statistics`, the
count and the sum of the values there; a categorical column keeps its category counts. A
window of current data is counted on the reference's edges and categories
(:func:`counts_in`, :func:`profile_window`), so its profile lines up with the reference and
profiles of chunks of a window add up (:func:`merge`) to the profile of the whole window.

Small samples keep their raw values — references of at most ``RAW_REFERENCE_LIMIT`` values,
windows of at most ``RAW_WINDOW_LIMIT`` — so the tests that matter at small sizes (KS with
SciPy's exact p-value) are computed on values, not cells.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from modelworks.data import _numeric
from modelworks.data.profiles import _value_counts
from modelworks.errors import InvalidInput
from modelworks.monitoring.drift._values import (
    Kind,
    check_frame,
    column_kind,
    column_labels,
    count_cells,
    finite_values,
    quantile_edges,
    top_counts,
)

__all__ = [
    "DISCRETE_MAX",
    "RAW_REFERENCE_LIMIT",
    "RAW_WINDOW_LIMIT",
    "CategoryCounts",
    "ColumnProfile",
    "NumericCells",
    "ReferenceProfile",
    "counts_in",
    "merge",
    "profile_reference",
    "profile_window",
]

# Evidently switches from tests to distances above 1,000 reference values; a reference that
# small keeps its values.
RAW_REFERENCE_LIMIT = 1_000
# SciPy's ks_2samp is exact up to 10,000 values a side; a window that small keeps its values.
RAW_WINDOW_LIMIT = 10_000
# Values off the reference edges are tracked one by one when the reference has at most this
# many distinct values (Evidently bins by value up to 20 distinct values and decides on
# "at most 5 distinct values in reference and current").
DISCRETE_MAX = 20


class NumericCells(BaseModel):
    """A numeric column's edges, its count and value sum per cell, moments and extremes.

    ``counts`` and ``sums`` have ``2·len(edges) + 1`` entries in the cell layout of
    ``statistics``. ``exact_edges`` says the edges are every distinct reference value.
    ``novel_values``/``novel_counts`` are a window's values between edges, one by one, while
    the reference is discrete (``exact_edges`` and at most ``DISCRETE_MAX`` edges) and there
    are at most ``DISCRETE_MAX`` of them; ``novel_overflow`` says there were more.
    """

    model_config = ConfigDict(frozen=True)

    edges: list[float]
    exact_edges: bool
    counts: list[int]
    sums: list[float]
    mean: float
    m2: float
    min: float | None = None
    max: float | None = None
    values: list[float] | None = None
    novel_values: list[float] = []
    novel_counts: list[int] = []
    novel_overflow: bool = False

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0), as ``np.std``."""
        total = sum(self.counts)
        return float(np.sqrt(max(self.m2, 0.0) / total)) if total else 0.0


class CategoryCounts(BaseModel):
    """Counts of the reference's categories (as strings), aligned with ``categories``.

    A reference keeps its ``limit`` most frequent categories, the rest in ``other``; a window
    counts the same categories and, while the reference kept all of its own, each category
    the reference never had in ``unseen`` (up to ``limit`` of them, the rest in ``other``).
    """

    model_config = ConfigDict(frozen=True)

    categories: list[str]
    counts: list[int]
    unseen: dict[str, int] = {}
    other: int = 0
    limit: int


class ColumnProfile(BaseModel):
    """One column's drift profile; ``count`` values were compared, ``missing`` were not
    (null, NaN and, for numbers, ±inf — as Evidently drops them)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Kind
    dtype: str
    count: int
    missing: int
    numeric: NumericCells | None = None
    categorical: CategoryCounts | None = None


class ReferenceProfile(BaseModel):
    """The drift profiles of a frame's columns: a reference, or a window counted on one.

    ``skipped`` names the reference columns not profiled and why (datetimes and other types
    that drift detection does not compare, as Evidently does not).
    """

    model_config = ConfigDict(frozen=True)

    role: Literal["reference", "window"]
    rows: int
    columns: list[ColumnProfile]
    skipped: dict[str, str] = {}

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``; an unknown name is an InvalidInput."""
        for column in self.columns:
            if column.name == name:
                return column
        known = ", ".join(repr(c.name) for c in self.columns) or "(none)"
        raise InvalidInput(f"no column {name!r} in the profile; columns: {known}", field="column")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


# --- building --------------------------------------------------------------------------------


def profile_reference(
    df: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    bins: int = 100,
    max_categories: int = 1_000,
) -> ReferenceProfile:
    """Profile the reference frame ``df`` (the ``columns`` given, else every column).

    Args:
        bins: quantile cells per numeric column with more distinct values than ``bins + 1``.
        max_categories: categories kept by name per categorical column.
    Raises:
        InvalidInput: ``df`` is not a DataFrame or has no rows, a named column is absent,
            or no column can be profiled.
    """
    check_frame(df, "reference")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InvalidInput(f"bins must be an integer >= 1, got {bins!r}", field="bins")
    if isinstance(max_categories, bool) or not isinstance(max_categories, int) or (
        max_categories < 1
    ):
        raise InvalidInput(
            f"max_categories must be an integer >= 1, got {max_categories!r}",
            field="max_categories",
        )
    labels = column_labels(df)
    names = list(labels) if columns is None else [str(c) for c in columns]
    absent = [n for n in names if n not in labels]
    if absent:
        raise InvalidInput(
            f"columns not in the reference: {', '.join(map(repr, absent))}", field="columns"
        )
    profiles: list[ColumnProfile] = []
    skipped: dict[str, str] = {}
    for name in names:
        series = df[labels[name]]
        kind = column_kind(series)
        if kind is None:
            skipped[name] = f"dtype {series.dtype} is not compared for drift"
        elif kind == "numeric":
            profiles.append(_numeric_reference(name, series, bins=bins))
        else:
            profiles.append(_categorical_reference(name, series, limit=max_categories))
    if not profiles:
        raise InvalidInput(
            "no numeric or categorical column to profile in the reference", field="reference"
        )
    return ReferenceProfile(role="reference", rows=len(df), columns=profiles, skipped=skipped)


def profile_window(reference: ReferenceProfile, df: pd.DataFrame) -> ReferenceProfile:
    """Count ``df`` on the reference's cells and categories, column by column.

    Reference columns absent from ``df`` are absent from the result (the detector reports
    them); columns the reference lacks are ignored.

    Raises:
        InvalidInput: ``df`` is not a DataFrame, or a column's values cannot be compared
            (text where the reference has numbers).
    """
    check_frame(df, "current", allow_empty=True)
    labels = column_labels(df)
    columns = [counts_in(c, df[labels[c.name]]) for c in reference.columns if c.name in labels]
    return ReferenceProfile(role="window", rows=len(df), columns=columns)


def counts_in(profile: ColumnProfile, series: pd.Series) -> ColumnProfile:
    """The profile of ``series`` counted on the cells or categories of ``profile``."""
    if profile.kind == "numeric":
        assert profile.numeric is not None
        return _numeric_window(profile, series)
    assert profile.categorical is not None
    return _categorical_window(profile, series)


# --- merging ---------------------------------------------------------------------------------


@overload
def merge(a: ReferenceProfile, b: ReferenceProfile) -> ReferenceProfile: ...
@overload
def merge(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile: ...
def merge(
    a: ReferenceProfile | ColumnProfile, b: ReferenceProfile | ColumnProfile
) -> ReferenceProfile | ColumnProfile:
    """The profile of the rows of both; counts and sums add, moments merge exactly.

    Both must be counted on the same edges and categories (windows of one reference). A
    column only one frame profile has is kept as it is.

    Raises:
        InvalidInput: the profiles were binned differently, or names or kinds differ.
    """
    if isinstance(a, ColumnProfile) and isinstance(b, ColumnProfile):
        return _merge_columns(a, b)
    if isinstance(a, ReferenceProfile) and isinstance(b, ReferenceProfile):
        if a.role != b.role:
            raise InvalidInput(f"cannot merge a {a.role} profile with a {b.role}", field="role")
        others = {c.name: c for c in b.columns}
        columns = [_merge_columns(c, others[c.name]) if c.name in others else c for c in a.columns]
        columns += [c for c in b.columns if c.name not in set(a.names)]
        return ReferenceProfile(
            role=a.role, rows=a.rows + b.rows, columns=columns, skipped={**b.skipped, **a.skipped}
        )
    raise InvalidInput("merge takes two column profiles or two frame profiles", field="b")


def _merge_columns(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    if a.name != b.name or a.kind != b.kind:
        raise InvalidInput(
            f"cannot merge column {a.name!r} ({a.kind}) with column {b.name!r} ({b.kind})",
            field="column",
        )
    numeric = categorical = None
    if a.numeric is not None and b.numeric is not None:
        numeric = _merge_numeric(a.name, a.numeric, b.numeric)
    if a.categorical is not None and b.categorical is not None:
        categorical = _merge_categorical(a.name, a.categorical, b.categorical)
    return ColumnProfile(
        name=a.name,
        kind=a.kind,
        dtype="|".join(sorted(set(a.dtype.split("|")) | set(b.dtype.split("|")))),
        count=a.count + b.count,
        missing=a.missing + b.missing,
        numeric=numeric,
        categorical=categorical,
    )


def _merge_numeric(name: str, a: NumericCells, b: NumericCells) -> NumericCells:
    if a.edges != b.edges or a.exact_edges != b.exact_edges:
        raise InvalidInput(
            f"cannot merge column {name!r}: the profiles were counted on different edges;"
            " count windows on the reference (profile_window)",
            field="edges",
        )
    total_a, total_b = sum(a.counts), sum(b.counts)
    _, mean, m2 = _numeric.merge_moments((total_a, a.mean, a.m2), (total_b, b.mean, b.m2))
    values = None
    if a.values is not None and b.values is not None and total_a + total_b <= RAW_WINDOW_LIMIT:
        values = a.values + b.values
    novel = dict(zip(a.novel_values, a.novel_counts, strict=True))
    for value, count in zip(b.novel_values, b.novel_counts, strict=True):
        novel[value] = novel.get(value, 0) + count
    overflow = a.novel_overflow or b.novel_overflow or len(novel) > DISCRETE_MAX
    ordered = {} if overflow else dict(sorted(novel.items()))
    extremes = [v for v in (a.min, b.min, a.max, b.max) if v is not None]
    return NumericCells(
        edges=a.edges,
        exact_edges=a.exact_edges,
        counts=[x + y for x, y in zip(a.counts, b.counts, strict=True)],
        sums=[x + y for x, y in zip(a.sums, b.sums, strict=True)],
        mean=mean,
        m2=m2,
        min=min(extremes) if extremes else None,
        max=max(extremes) if extremes else None,
        values=values,
        novel_values=list(ordered),
        novel_counts=list(ordered.values()),
        novel_overflow=overflow,
    )


def _merge_categorical(name: str, a: CategoryCounts, b: CategoryCounts) -> CategoryCounts:
    if a.categories != b.categories:
        raise InvalidInput(
            f"cannot merge column {name!r}: the profiles count different categories;"
            " count windows on the reference (profile_window)",
            field="categories",
        )
    unseen = dict(a.unseen)
    for key, value in b.unseen.items():
        unseen[key] = unseen.get(key, 0) + value
    kept, rest = top_counts(unseen, a.limit)
    return CategoryCounts(
        categories=a.categories,
        counts=[x + y for x, y in zip(a.counts, b.counts, strict=True)],
        unseen=kept,
        other=a.other + b.other + rest,
        limit=a.limit,
    )


# --- columns ---------------------------------------------------------------------------------


def _numeric_reference(name: str, series: pd.Series, *, bins: int) -> ColumnProfile:
    values, missing = finite_values(series, name)
    ordered = np.sort(values)
    if ordered.size:
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        distinct = ordered[starts]
    else:
        distinct = ordered
    exact = ordered.size <= RAW_REFERENCE_LIMIT or distinct.size <= bins + 1
    edges = distinct if exact else quantile_edges(ordered, bins)
    counts, sums, _ = count_cells(edges, ordered)
    count, mean, m2 = _numeric.moments(ordered)
    cells = NumericCells(
        edges=edges.tolist(),
        exact_edges=bool(exact),
        counts=counts.tolist(),
        sums=sums.tolist(),
        mean=mean,
        m2=m2,
        min=float(ordered[0]) if count else None,
        max=float(ordered[-1]) if count else None,
        values=ordered.tolist() if count <= RAW_REFERENCE_LIMIT else None,
    )
    return ColumnProfile(
        name=name, kind="numeric", dtype=str(series.dtype), count=count, missing=missing,
        numeric=cells,
    )


def _numeric_window(profile: ColumnProfile, series: pd.Series) -> ColumnProfile:
    ref = profile.numeric
    assert ref is not None
    values, missing = finite_values(series, profile.name)
    edges = np.asarray(ref.edges, dtype=float)
    counts, sums, at_edge = count_cells(edges, values)
    count, mean, m2 = _numeric.moments(values)
    novel_values: list[float] = []
    novel_counts: list[int] = []
    overflow = False
    if ref.exact_edges and edges.size <= DISCRETE_MAX:
        uniques, tally = np.unique(values[~at_edge], return_counts=True)
        overflow = uniques.size > DISCRETE_MAX
        if not overflow:
            novel_values, novel_counts = uniques.tolist(), tally.tolist()
    cells = NumericCells(
        edges=ref.edges,
        exact_edges=ref.exact_edges,
        counts=counts.tolist(),
        sums=sums.tolist(),
        mean=mean,
        m2=m2,
        min=float(values.min()) if count else None,
        max=float(values.max()) if count else None,
        values=values.tolist() if count <= RAW_WINDOW_LIMIT else None,
        novel_values=novel_values,
        novel_counts=novel_counts,
        novel_overflow=overflow,
    )
    return ColumnProfile(
        name=profile.name, kind="numeric", dtype=str(series.dtype), count=count,
        missing=missing, numeric=cells,
    )


def _categorical_reference(name: str, series: pd.Series, *, limit: int) -> ColumnProfile:
    names, counts = _value_counts(series)
    kept, rest = top_counts(dict(zip(names.tolist(), counts.tolist(), strict=True)), limit)
    categories = CategoryCounts(
        categories=list(kept), counts=list(kept.values()), other=rest, limit=limit
    )
    count = int(counts.sum())
    return ColumnProfile(
        name=name, kind="categorical", dtype=str(series.dtype), count=count,
        missing=len(series) - count, categorical=categories,
    )


def _categorical_window(profile: ColumnProfile, series: pd.Series) -> ColumnProfile:
    ref = profile.categorical
    assert ref is not None
    names, counts = _value_counts(series)
    index = pd.Index(ref.categories).get_indexer(names)
    known = index >= 0
    aligned = np.zeros(len(ref.categories), dtype=np.int64)
    aligned[index[known]] = counts[known]
    new = dict(zip(names[~known].tolist(), counts[~known].tolist(), strict=True))
    unseen: dict[str, int] = {}
    if ref.other:  # the reference dropped rare categories: a new name may be one of them
        rest = sum(new.values())
    else:
        unseen, rest = top_counts(new, ref.limit)
    count = int(counts.sum())
    categories = CategoryCounts(
        categories=ref.categories, counts=aligned.tolist(), unseen=unseen, other=rest,
        limit=ref.limit,
    )
    return ColumnProfile(
        name=profile.name, kind="categorical", dtype=str(series.dtype), count=count,
        missing=len(series) - count, categorical=categories,
    )


