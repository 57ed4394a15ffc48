"""Model input/output signatures: what columns a registered model takes, checked before it runs.

A signature is inferred once from an example frame (``infer_signature``) and stored with the
model version; serving calls ``check_input`` on every request so that a bad payload fails with
one ``InvalidInput`` naming every offending column, instead of a stack trace from inside the
model. Kinds are backend-neutral (``integer``, ``float``, ...), not pandas dtype strings, so a
signature survives pandas upgrades.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from modelworks.errors import InvalidInput

__all__ = ["ColumnKind", "ColumnSpec", "OutputKind", "Signature", "check_input", "infer_signature"]

ColumnKind = Literal["integer", "float", "boolean", "string", "category", "datetime"]
OutputKind = Literal["class", "probability", "number", "vector"]

_MAX_ITEMS = 5  # values shown per list in a message: enough to act on, never the payload
_MAX_CHARS = 40  # characters shown per value or column name

# What ``infer_dtype`` says about an object column's values; "empty" means all missing.
_OBJECT_KINDS: dict[str, ColumnKind | Literal["empty"]] = {
    "string": "string",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
    "empty": "empty",
}


class ColumnSpec(BaseModel):
    """One input column; ``categories`` lists the levels of a ``category`` column, as strings."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: ColumnKind
    nullable: bool
    categories: list[str] | None = None

    @model_validator(mode="after")
    def _categories_only_for_category(self) -> ColumnSpec:
        if self.categories is not None and self.dtype != "category":
            raise ValueError(f"column {self.name!r}: categories are only valid for dtype category")
        return self


class Signature(BaseModel):
    """The model's inputs, in the order the model expects them, and what kind it outputs.

    ``output`` is one of ``class``, ``probability``, ``number``, ``vector``, free text, or
    ``None`` when unknown. Serialize with ``model_dump()`` / ``model_validate()``.
    """

    model_config = ConfigDict(frozen=True)

    inputs: list[ColumnSpec]
    output: OutputKind | str | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Signature:
        names = [c.name for c in self.inputs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate input column names: {_listing(duplicates)}")
        if not self.inputs:
            raise ValueError("a signature needs at least one input column")
        return self


def infer_signature(input_example: pd.DataFrame, *, output: str | None = None) -> Signature:
    """Infer a signature from an example frame.

    ``nullable`` is True only when the example has a missing value in that column: a column
    that may be missing but is complete in the example must be relaxed by passing an explicit
    signature. Object columns are classified by their values (strings → ``string``; all
    missing → ``string``).

    Raises:
        InvalidInput: (field ``input_example``) not a DataFrame, no columns, duplicate or
            non-string column names, or a column of a kind signatures do not cover.
    """
    field = "input_example"
    if not isinstance(input_example, pd.DataFrame):
        raise InvalidInput(
            f"input_example must be a pandas DataFrame, got {type(input_example).__name__}",
            field=field,
        )
    columns = list(input_example.columns)
    if not columns:
        raise InvalidInput("input_example has no columns", field=field)
    if not input_example.columns.is_unique:
        duplicates = input_example.columns[input_example.columns.duplicated()].unique()
        raise InvalidInput(
            f"input_example has duplicate column names: {_listing(list(duplicates))}", field=field
        )
    not_str = [c for c in columns if not isinstance(c, str)]
    if not_str:
        raise InvalidInput(
            f"input_example column names must be strings, got {_listing(not_str)}", field=field
        )
    specs: list[ColumnSpec] = []
    unsupported: list[str] = []
    for name in columns:
        series = input_example[name]
        kind = _kind_of(series)
        if kind is None:
            unsupported.append(f"{_short(repr(name))} ({series.dtype})")
            continue
        if kind == "empty":
            kind = "string"
        categories = None
        if kind == "category":
            categories = [str(level) for level in series.cat.categories]
        specs.append(
            ColumnSpec(
                name=name,
                dtype=kind,
                nullable=bool(series.isna().any()),
                categories=categories,
            )
        )
    if unsupported:
        raise InvalidInput(
            f"input_example has columns of unsupported dtype: {_listing(unsupported, quote=False)}"
            f"; supported kinds: {', '.join(get_args(ColumnKind))}",
            field=field,
        )
    return Signature(inputs=specs, output=output)


def check_input(signature: Signature, df: Any) -> pd.DataFrame:
    """Validate a payload against ``signature`` before the model runs.

    ``df`` is a DataFrame, a dict of lists or a list of dicts. Returns a new frame with the
    signature's columns in its order and safe conversions applied (integer → float; integral
    floats → integer; strings → category; object columns → their kind's dtype). The caller's
    frame is never mutated.

    Raises:
        InvalidInput: (field ``input``) once, naming every offending column, grouped as
            missing, unexpected, wrong type, missing values and unknown category levels.
    """
    if isinstance(df, list) and 0 < len(df) <= _FAST_ROWS:
        fast = _check_rows(signature, df)
        if fast is not None:
            return fast
    frame = _as_frame(df)
    specs = {spec.name: spec for spec in signature.inputs}
    present = set(frame.columns)
    missing = [name for name in specs if name not in present]
    unexpected = [c for c in frame.columns if not isinstance(c, str) or c not in specs]
    duplicated = set(frame.columns[frame.columns.duplicated()])

    wrong_type: list[str] = []
    nulls: list[str] = []
    unknown_levels: list[str] = []
    converted: dict[str, pd.Series] = {}
    for spec in signature.inputs:
        if spec.name not in present or spec.name in duplicated:
            continue
        series = frame[spec.name]
        n_missing = int(series.isna().sum())
        if n_missing and not spec.nullable:
            nulls.append(f"{_short(repr(spec.name))} ({n_missing} missing)")
        result = _conform(series, spec, n_missing)
        if isinstance(result, str):
            wrong_type.append(f"{_short(repr(spec.name))} (expected {spec.dtype}, found {result})")
            continue
        if spec.dtype == "category" and spec.categories is not None:
            unknown = _unknown_levels(series, spec.categories)
            if unknown:
                unknown_levels.append(
                    f"{_short(repr(spec.name))} ({_listing(unknown)}; "
                    f"expected one of {_listing(spec.categories)})"
                )
                continue
        converted[spec.name] = result

    problems = [
        (f"missing columns: {_listing(missing, cap=None)}" if missing else ""),
        (f"unexpected columns: {_listing(unexpected, cap=None)}" if unexpected else ""),
        (
            f"duplicate columns: {_listing(sorted(duplicated, key=str), cap=None)}"
            if duplicated
            else ""
        ),
        (f"wrong types: {', '.join(wrong_type)}" if wrong_type else ""),
        (f"missing values in non-nullable columns: {', '.join(nulls)}" if nulls else ""),
        (f"unknown category levels: {', '.join(unknown_levels)}" if unknown_levels else ""),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise InvalidInput(
            "input does not match the model signature: " + "; ".join(problems), field="input"
        )
    return pd.DataFrame(converted, index=frame.index)


_FAST_ROWS = 256  # list-of-dict payloads up to this size try the row-by-row check first
_INT64 = 1 << 63


def _fits(spec: ColumnSpec, levels: frozenset[str] | None, value: Any) -> bool:
    """``value`` (from a JSON payload) is already of ``spec``'s kind and never missing."""
    kind = type(value)
    if spec.dtype == "float":
        return (kind is float and value == value) or (kind is int and -_INT64 <= value < _INT64)
    if spec.dtype == "integer":
        return kind is int and -_INT64 <= value < _INT64
    if spec.dtype == "boolean":
        return kind is bool
    if spec.dtype == "string":
        return kind is str
    return kind is str and levels is not None and value in levels  # category


class _RowPlan:
    """What the row-by-row check needs of a signature, made once per signature."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.names = [spec.name for spec in signature.inputs]
        self.keys = set(self.names)
        self.usable = all(spec.dtype != "datetime" and (spec.dtype != "category"
                                                         or spec.categories is not None)
                          for spec in signature.inputs)
        self.columns = [(spec, frozenset(spec.categories) if spec.categories else None,
                         pd.CategoricalDtype(spec.categories) if spec.dtype == "category"
                         else None) for spec in signature.inputs]


_plans: dict[int, _RowPlan] = {}


def _plan_of(signature: Signature) -> _RowPlan:
    plan = _plans.get(id(signature))
    if plan is None or plan.signature is not signature:
        if len(_plans) >= 256:
            _plans.clear()
        plan = _plans[id(signature)] = _RowPlan(signature)
    return plan


def _check_rows(signature: Signature, rows: list[Any]) -> pd.DataFrame | None:
    """The frame ``check_input`` returns, built straight from a small list-of-dicts payload
    whose every value is already of its column's kind; None for anything else, which the
    general path then checks (and words the error for).

    For a one-row request the general path's per-column pandas work (a frame, then a Series,
    a type inference, a conversion and a category check per column) costs milliseconds for
    a dozen columns; here it is one pass over the values and one frame. The frame is the
    same — same columns, dtypes, categories and index — which a test checks against the
    general path on payloads of every kind.
    """
    plan = _plan_of(signature)
    if not plan.usable:
        return None
    for row in rows:
        if type(row) is not dict or row.keys() != plan.keys:
            return None
    data: dict[str, Any] = {}
    for spec, levels, dtype in plan.columns:
        values = [row[spec.name] for row in rows]
        if not all(_fits(spec, levels, value) for value in values):
            return None
        if dtype is not None:
            data[spec.name] = pd.Categorical(values, dtype=dtype)
        elif spec.dtype == "float":
            data[spec.name] = np.array(values, dtype=np.float64)
        else:
            data[spec.name] = values
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def _as_frame(data: Any) -> pd.DataFrame:
    """Accept the payload shapes a client sends; anything else is an ``InvalidInput``."""
    if isinstance(data, pd.DataFrame):
        return data
    ok_shape = isinstance(data, Mapping) or (
        isinstance(data, Sequence)
        and not isinstance(data, str | bytes)
        and all(isinstance(row, Mapping) for row in data)
    )
    if ok_shape:
        try:
            return pd.DataFrame(data)
        except (ValueError, TypeError) as exc:
            reason = _short(str(exc), limit=80)
            raise InvalidInput(f"input cannot be read as a table: {reason}", field="input") from exc
    raise InvalidInput(
        "input must be a pandas DataFrame, a dict of lists or a list of dicts, "
        f"got {type(data).__name__}",
        field="input",
    )


def _kind_of(series: pd.Series) -> ColumnKind | Literal["empty"] | None:
    """The signature kind of a column; ``"empty"`` for an all-missing object column."""
    dtype = series.dtype
    types = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if types.is_bool_dtype(dtype):
        return "boolean"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_integer_dtype(dtype):
        return "integer"
    if types.is_float_dtype(dtype):
        return "float"
    if types.is_object_dtype(dtype):
        return _OBJECT_KINDS.get(types.infer_dtype(series, skipna=True))
    if types.is_string_dtype(dtype):
        return "string"
    return None


def _conform(series: pd.Series, spec: ColumnSpec, n_missing: int) -> pd.Series | str:
    """The column converted to ``spec``'s kind, or a description of what was found instead."""
    try:
        return _convert(series, spec, n_missing)
    except (OverflowError, ValueError, TypeError) as exc:  # e.g. an integer beyond 64 bits
        return f"{series.dtype} that cannot be read as {spec.dtype} ({_short(str(exc))})"


def _convert(series: pd.Series, spec: ColumnSpec, n_missing: int) -> pd.Series | str:
    found = _kind_of(series)
    expected = spec.dtype
    is_object = pd.api.types.is_object_dtype(series.dtype)
    if found == "float" and expected == "integer":
        values = series.dropna().to_numpy(dtype=np.float64)
        if not (np.isfinite(values).all() and (values == np.floor(values)).all()):
            return f"{series.dtype} with non-integral values"
        return series.astype("Int64" if n_missing else "int64")
    if found == "integer" and expected == "float":
        return pd.Series(
            series.to_numpy(dtype=np.float64, na_value=np.nan), index=series.index, name=series.name
        )
    if found == "string" and expected == "category":
        if spec.categories is not None and _unknown_levels(series, spec.categories):
            return series  # the caller reports the levels; converting would drop them
        return series.astype(pd.CategoricalDtype(spec.categories))
    if found != expected and found != "empty":
        if is_object and found is not None:
            return f"object holding {found} values"
        return str(series.dtype)
    if expected == "category":
        return _recategorize(series, spec.categories)
    if not is_object or expected == "string":
        return series
    # Object columns carry Python scalars; give the model the dtype it was trained on.
    if expected == "integer":
        return series.astype("Int64" if n_missing else "int64")
    if expected == "float":
        return series.astype(np.float64)
    if expected == "boolean":
        return series.astype("boolean" if n_missing else bool)
    return pd.to_datetime(series)


def _recategorize(series: pd.Series, levels: list[str] | None) -> pd.Series:
    """Give a (string-levelled) category column the signature's levels, so codes are stable."""
    if levels is None:
        return (
            series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
        )
    if not isinstance(series.dtype, pd.CategoricalDtype):  # all missing
        return series.astype(pd.CategoricalDtype(levels))
    if pd.api.types.infer_dtype(series.cat.categories) != "string":
        return series  # levels were compared as strings; keep the model's own level type
    return series.cat.set_categories(levels)


def _unknown_levels(series: pd.Series, levels: list[str]) -> list[str]:
    """Distinct values, as strings, that are not among ``levels``."""
    values = pd.Index(series.dropna().unique()).astype(str)
    return list(values[~values.isin(levels)])


def _short(value: object, *, limit: int = _MAX_CHARS) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(items: Sequence[object], *, cap: int | None = _MAX_ITEMS, quote: bool = True) -> str:
    """``'a', 'b', ... (3 more)``: items repr'd, each shortened, at most ``cap`` of them."""
    shown = items if cap is None else items[:cap]
    parts = [_short(repr(item) if quote else item) for item in shown]
    if cap is not None and len(items) > cap:
        parts.append(f"... ({len(items) - cap} more)")
    return ", ".join(parts)
