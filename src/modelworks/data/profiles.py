"""Mergeable column profiles: the reference statistics that drift monitoring compares against.

A profile keeps counts, moments and bin counts, never rows, so the profiles of two windows
merge into the profile of their union and the cost of monitoring grows with new data only.
Windows are profiled against a reference's bin edges (``profile_frame(..., reference=ref)``)
so that their bin counts line up with the reference's and with each other.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from modelworks.data import _numeric
from modelworks.data._numeric import NumericSummary
from modelworks.errors import InvalidInput

__all__ = [
    "CategoricalSummary",
    "ColumnProfile",
    "DatasetProfile",
    "NumericSummary",
    "merge_columns",
    "merge_profiles",
    "profile_column",
    "profile_frame",
]

Kind = Literal["numeric", "categorical", "boolean", "datetime", "other"]

# Fewer rows than this cannot tell an identifier from a short list of distinct labels.
_MIN_IDENTIFIER_ROWS = 20


class CategoricalSummary(BaseModel):
    """Counts of the ``top_k`` most frequent values (as strings), the rest in ``other_count``.

    ``distinct`` is exact for a profile of one frame; after a merge it is a lower bound
    (the larger of the two, or the number of categories seen, whichever is larger), because
    a profile does not keep the values that went to ``other_count``.
    """

    model_config = ConfigDict(frozen=True)

    counts: dict[str, int]
    other_count: int
    distinct: int
    top_k: int


class ColumnProfile(BaseModel):
    """The profile of one column; ``count`` is its rows, missing ones included."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: str
    kind: Kind
    count: int
    missing: int
    is_identifier: bool = False
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None


class DatasetProfile(BaseModel):
    """The profiles of a frame's columns, in column order."""

    model_config = ConfigDict(frozen=True)

    rows: int
    columns: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``; an unknown name is an InvalidInput."""
        for column in self.columns:
            if column.name == name:
                return column
        known = ", ".join(repr(c.name) for c in self.columns) or "(none)"
        raise InvalidInput(f"no column {name!r} in profile; columns: {known}", field="column")


def profile_column(
    series: pd.Series,
    *,
    bins: int = 10,
    top_k: int = 20,
    edges: Sequence[float] | None = None,
    id_threshold: float = 0.95,
    identifier: bool | None = None,
) -> ColumnProfile:
    """Profile one column.

    Args:
        bins: number of quantile bins for numeric columns (fewer when quantiles coincide).
        top_k: categories kept by name; the rest are summed in ``other_count``.
        edges: bin numeric/datetime values into these edges instead of quantiles, so the
            counts line up with a reference's. Ignored for other kinds.
        id_threshold: share of distinct non-missing values that marks an integer or string
            column of at least 20 values as an identifier, whose values are not kept.
        identifier: ``None`` detects; ``True``/``False`` force the verdict.
    Raises:
        InvalidInput: a parameter is out of range or ``edges`` cannot bin values.
    """
    _check_options(bins=bins, top_k=top_k, id_threshold=id_threshold)
    if edges is not None and (problem := _numeric.check_edges(edges)) is not None:
        raise InvalidInput(problem, field="edges")
    kind = _kind(series)
    missing = int(series.isna().sum())
    non_missing = len(series) - missing
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None
    if kind in ("numeric", "datetime"):
        if kind == "datetime":
            values = _numeric.epoch_seconds(series)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        values = values[~np.isnan(values)]
        if identifier is None:
            identifier = (
                pd.api.types.is_integer_dtype(series.dtype)
                and non_missing >= _MIN_IDENTIFIER_ROWS
                and series.nunique(dropna=True) >= id_threshold * non_missing
            )
        numeric = _numeric.summarize(values, bins=bins, edges=edges, identifier=identifier)
    elif kind in ("categorical", "boolean"):
        names, counts = _value_counts(series)
        distinct = len(names)
        if identifier is None:
            identifier = (
                kind == "categorical"
                and _string_or_integer(series.dtype, series)
                and non_missing >= _MIN_IDENTIFIER_ROWS
                and distinct >= id_threshold * non_missing
            )
        kept = {} if identifier else _top_counts(names, counts, top_k)
        categorical = CategoricalSummary(
            counts=kept,
            other_count=non_missing - sum(kept.values()),
            distinct=distinct,
            top_k=top_k,
        )
    return ColumnProfile(
        name="" if series.name is None else str(series.name),
        dtype=str(series.dtype),
        kind=kind,
        count=len(series),
        missing=missing,
        is_identifier=bool(identifier),
        numeric=numeric,
        categorical=categorical,
    )


def profile_frame(
    df: pd.DataFrame,
    *,
    bins: int = 10,
    top_k: int = 20,
    reference: DatasetProfile | None = None,
    id_threshold: float = 0.95,
) -> DatasetProfile:
    """Profile every column; with ``reference``, numeric columns reuse its bin edges.

    A column the reference marks as an identifier stays one, so windows never keep values
    the reference dropped. Columns the reference lacks are profiled on their own.
    """
    known = {c.name: c for c in reference.columns} if reference is not None else {}
    columns = []
    for name, series in df.items():
        ref = known.get(str(name))
        edges: list[float] | None = None
        if ref is not None and ref.numeric is not None and ref.kind == _kind(series):
            edges = ref.numeric.bin_edges or None
        columns.append(
            profile_column(
                series.rename(str(name)),
                bins=bins,
                top_k=top_k,
                edges=edges,
                id_threshold=id_threshold,
                identifier=True if ref is not None and ref.is_identifier else None,
            )
        )
    return DatasetProfile(rows=len(df), columns=columns)


def merge_profiles(a: DatasetProfile, b: DatasetProfile) -> DatasetProfile:
    """The profile of the rows of both; a column only one side has is kept as it is."""
    others = {c.name: c for c in b.columns}
    names = {c.name for c in a.columns}
    columns = [merge_columns(c, others[c.name]) if c.name in others else c for c in a.columns]
    columns += [c for c in b.columns if c.name not in names]
    return DatasetProfile(rows=a.rows + b.rows, columns=columns)


def merge_columns(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    """The profile of one column over the rows of both profiles.

    Counts add, moments merge exactly, bin counts add (the edges must be identical).
    Categories beyond ``top_k`` after the merge move to ``other_count``; an identifier on
    either side makes the merge an identifier, keeping no values.

    Raises:
        InvalidInput: the names or kinds differ, or the numeric bins differ.
    """
    if a.name != b.name:
        raise InvalidInput(f"cannot merge column {a.name!r} with column {b.name!r}", field="column")
    if a.kind != b.kind:
        raise InvalidInput(
            f"cannot merge column {a.name!r}: it is {a.kind} in one profile and {b.kind} in the"
            " other",
            field="column",
        )
    identifier = a.is_identifier or b.is_identifier
    numeric = a.numeric or b.numeric
    if a.numeric is not None and b.numeric is not None:
        numeric = _numeric.merge_numeric(a.name, a.numeric, b.numeric, identifier=identifier)
    categorical = a.categorical or b.categorical
    if a.categorical is not None and b.categorical is not None:
        categorical = _merge_categorical(a.categorical, b.categorical, identifier=identifier)
    return ColumnProfile(
        name=a.name,
        dtype="|".join(sorted(set(a.dtype.split("|")) | set(b.dtype.split("|")))),
        kind=a.kind,
        count=a.count + b.count,
        missing=a.missing + b.missing,
        is_identifier=identifier,
        numeric=numeric,
        categorical=categorical,
    )


def _check_options(*, bins: int, top_k: int, id_threshold: float) -> None:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InvalidInput(f"bins must be an integer >= 1, got {bins!r}", field="bins")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidInput(f"top_k must be an integer >= 0, got {top_k!r}", field="top_k")
    if not 0.0 < id_threshold <= 1.0:
        raise InvalidInput(
            f"id_threshold must be in (0, 1], got {id_threshold!r}", field="id_threshold"
        )


def _kind(series: pd.Series) -> Kind:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        return "boolean" if inferred == "boolean" else "categorical"
    if pd.api.types.is_string_dtype(dtype):
        return "categorical"
    return "other"


def _string_or_integer(dtype: object, values: pd.Series | pd.Index) -> bool:
    """Whether values are typed as labels (strings, integers) rather than measurements."""
    if isinstance(dtype, pd.CategoricalDtype):
        return _string_or_integer(dtype.categories.dtype, dtype.categories)
    if pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_object_dtype(dtype):
        return pd.api.types.infer_dtype(values, skipna=True) in ("string", "integer")
    return pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_string_dtype(dtype)


def _value_counts(series: pd.Series) -> tuple[pd.Index, np.ndarray]:
    """The distinct non-missing values as strings, and how often each occurs."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    index = pd.Index(uniques)
    names = index.astype(str)
    dtype = index.categories.dtype if isinstance(index, pd.CategoricalIndex) else index.dtype
    # Only mixed objects can collide as strings (1 and "1" become one category); checking
    # uniqueness costs a hash table, so typed values skip it.
    if pd.api.types.is_object_dtype(dtype) and not names.is_unique:
        summed = pd.Series(counts, index=names).groupby(level=0).sum()
        names, counts = summed.index, summed.to_numpy()
    return names, counts


def _top_counts(names: pd.Index, counts: np.ndarray, top_k: int) -> dict[str, int]:
    """The ``top_k`` largest counts by name, largest first, ties broken by name."""
    if top_k == 0 or counts.size == 0:
        return {}
    if counts.size <= top_k:
        chosen = list(zip(names.tolist(), counts.tolist(), strict=True))
    else:
        # Select without sorting every category: all above the k-th largest count, then the
        # alphabetically first of those tied with it.
        threshold = int(np.partition(counts, counts.size - top_k)[counts.size - top_k])
        above = np.flatnonzero(counts > threshold)
        tied = names.take(np.flatnonzero(counts == threshold)).tolist()
        chosen = list(zip(names.take(above).tolist(), counts[above].tolist(), strict=True))
        chosen += [(name, threshold) for name in heapq.nsmallest(top_k - above.size, tied)]
    ranked = sorted(chosen, key=lambda item: (-item[1], item[0]))
    return {str(name): int(count) for name, count in ranked}


def _merge_categorical(
    a: CategoricalSummary, b: CategoricalSummary, *, identifier: bool
) -> CategoricalSummary:
    top_k = min(a.top_k, b.top_k)
    merged = dict(a.counts)
    for key, value in b.counts.items():
        merged[key] = merged.get(key, 0) + value
    distinct = max(a.distinct, b.distinct, len(merged))
    total = a.other_count + b.other_count + sum(merged.values())
    ranked = [] if identifier else sorted(merged.items(), key=lambda x: (-x[1], x[0]))[:top_k]
    kept = dict(ranked)
    return CategoricalSummary(
        counts=kept, other_count=total - sum(kept.values()), distinct=distinct, top_k=top_k
    )
