"""Request payloads → rows, and the signature check on the hot path.

Every accepted shape becomes a list of row dicts (``{column: value}``), which is what the
prediction log stores and what a numeric model turns into one NumPy matrix without pandas:

- ``{"instances": [{...}, ...]}`` (ours, and MLflow's/TF-serving's records form); also a list
  of lists in the signature's column order;
- MLflow's ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
  ``{"dataframe_records": [{...}]}`` and ``{"inputs": {col: [values]}}`` or
  ``{"inputs": [{...}]}``.

Errors are ``InvalidInput`` naming the field (``instances[3]``, ``dataframe_split.columns``)
or, for a signature mismatch, every offending column — never echoing the payload.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..registry.signatures import Signature

__all__ = ["FORMATS", "MAX_ROWS", "Plan", "matrix_plan", "numeric_signature", "parse_payload",
           "rows_from_columns", "rows_to_matrix", "short"]

FORMATS = ("instances", "dataframe_split", "dataframe_records", "inputs")
MAX_ROWS = 100_000  # per request; the body-size limit usually stops a payload first
_MAX_CHARS = 40
_NUMERIC = {"integer", "float", "boolean"}


def short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def _listing(items: Sequence[str], cap: int = 8) -> str:
    shown = ", ".join(short(repr(i)) for i in items[:cap])
    return shown + (f" and {len(items) - cap} more" if len(items) > cap else "")


def rows_from_columns(columns: Any, data: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput(f"{field}.columns must be a list of column names",
                           field=f"{field}.columns")
    if not isinstance(data, list):
        raise InvalidInput(f"{field}.data must be a list of rows", field=f"{field}.data")
    rows = []
    width = len(columns)
    for i, values in enumerate(data):
        if not isinstance(values, list) or len(values) != width:
            raise InvalidInput(f"{field}.data[{i}] must be a list of {width} values (one per "
                               "column)", field=f"{field}.data[{i}]")
        rows.append(dict(zip(columns, values, strict=True)))
    return rows


def _records(items: Any, field: str, signature: Signature | None) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise InvalidInput(f"{field} must be a list of rows", field=field)
    if items and not isinstance(items[0], dict):
        if signature is None or not isinstance(items[0], list):
            raise InvalidInput(f"{field} must be a list of objects mapping column to value",
                               field=field)
        names = [c.name for c in signature.inputs]
        return rows_from_columns(names, items, field)
    for i, row in enumerate(items):
        if not isinstance(row, dict):
            raise InvalidInput(f"{field}[{i}] must be an object mapping column to value",
                               field=f"{field}[{i}]")
    return items


def _columnar(columns: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    lengths = set()
    for name, values in columns.items():
        if not isinstance(values, list):
            raise InvalidInput(f"{field}.{short(name)} must be a list of values",
                               field=f"{field}.{name}")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise InvalidInput(f"{field}: columns have different lengths ({sorted(lengths)})",
                           field=field)
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def parse_payload(body: Any, signature: Signature | None) -> list[dict[str, Any]]:
    """Rows from a decoded JSON body in any accepted shape."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object with one of "
                           f"{', '.join(FORMATS)}", field="body")
    keys = [k for k in FORMATS if k in body]
    if len(keys) != 1:
        found = f"found {', '.join(keys)}" if keys else "found none"
        raise InvalidInput(f"the body needs exactly one of {', '.join(FORMATS)}; {found}",
                           field="body")
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InvalidInput("dataframe_split must be an object with columns and data",
                               field=key)
        rows = rows_from_columns(value.get("columns"), value.get("data"), key)
    elif key == "inputs" and isinstance(value, dict):
        rows = _columnar(value, key)
    else:
        rows = _records(value, key, signature)
    if not rows:
        raise InvalidInput(f"{key} holds no rows: send at least one", field=key)
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"{key} holds {len(rows)} rows; at most {MAX_ROWS} per request",
                           field=key)
    return rows


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return type(value).__name__ if value is not None else "null"


_MISSING = object()
Plan = list[tuple[str, tuple[type, ...], bool, bool]]


def matrix_plan(signature: Signature) -> Plan:
    """Per column: name, accepted Python types, nullable, integral — computed once."""
    plan: Plan = []
    for spec in signature.inputs:
        if spec.dtype == "boolean":
            plan.append((spec.name, (bool,), spec.nullable, False))
        else:
            plan.append((spec.name, (int, float), spec.nullable, spec.dtype == "integer"))
    return plan


def rows_to_matrix(rows: list[dict[str, Any]], signature: Signature,
                   plan: Plan | None = None) -> np.ndarray:
    """A float64 matrix in the signature's column order, for all-numeric signatures.

    Checks exactly what ``check_input`` checks (missing, unexpected and mistyped columns,
    missing values where not allowed) in plain Python: on one row this costs microseconds,
    where building a DataFrame costs hundreds. ``plan`` is ``matrix_plan(signature)``.
    """
    plan = plan if plan is not None else matrix_plan(signature)
    width = len(plan)
    data = []
    nan = math.nan
    for row in rows:
        if len(row) != width:
            raise _mismatch(rows, signature)
        values = []
        for name, allowed, nullable, integral in plan:
            value = row.get(name, _MISSING)
            kind = type(value)
            if kind in allowed:
                if kind is float and ((integral and not value.is_integer())
                                      or (not nullable and not math.isfinite(value))):
                    raise _mismatch(rows, signature)
            elif value is None and nullable:
                value = nan
            else:  # missing, unexpected, wrong type (bool is not a number here)
                raise _mismatch(rows, signature)
            values.append(value)
        data.append(values)
    return np.array(data, dtype=np.float64)


def _mismatch(rows: list[dict[str, Any]], signature: Signature) -> InvalidInput:
    """The same message ``check_input`` gives, built from rows."""
    specs = {s.name: s for s in signature.inputs}
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    missing = [n for n in specs if n not in seen or any(n not in row for row in rows)]
    unexpected = [c for c in seen if c not in specs]
    wrong: list[str] = []
    nulls: list[str] = []
    for name, spec in specs.items():
        if name in missing:
            continue
        kinds = {_kind(row[name]) for row in rows}
        n_null = sum(1 for row in rows if row[name] is None or (
            isinstance(row[name], float) and not math.isfinite(row[name])))
        if n_null and not spec.nullable:
            nulls.append(f"{short(repr(name))} ({n_null} missing)")
        kinds -= {"null"}
        allowed = {"integer": {"integer"}, "float": {"integer", "float"},
                   "boolean": {"boolean"}}.get(spec.dtype, {"string"})
        if spec.dtype == "integer" and "float" in kinds:
            values = [row[name] for row in rows if isinstance(row[name], float)]
            if all(math.isfinite(v) and v == math.floor(v) for v in values):
                kinds.discard("float")
        bad = sorted(kinds - allowed)
        if bad:
            wrong.append(f"{short(repr(name))} (expected {spec.dtype}, found {', '.join(bad)})")
    problems = [
        f"missing columns: {_listing(missing)}" if missing else "",
        f"unexpected columns: {_listing(unexpected)}" if unexpected else "",
        f"wrong types: {', '.join(wrong)}" if wrong else "",
        f"missing values in non-nullable columns: {', '.join(nulls)}" if nulls else "",
    ]
    text = "; ".join(p for p in problems if p) or "values the model cannot take"
    return InvalidInput(f"input does not match the model signature: {text}", field="input")


def numeric_signature(signature: Signature | None) -> bool:
    return signature is not None and all(
        c.dtype in _NUMERIC and c.categories is None for c in signature.inputs)
