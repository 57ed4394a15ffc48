"""Data quality of a window against the reference: what a model should not be fed.

Five checks per reference column, counted per window (``count``; flagged when):

- ``schema_violation``: values of the wrong type (text that is not a number in a numeric
  column; a list or object in any column), plus every row when the column is missing;
  flagged when count > 0.
- ``missing_rate_jump``: missing values (null, NaN, ±inf; a wrong-typed value is not counted
  again here); flagged when the missing rate rose more than ``missing_jump`` (0.05) above
  the reference's and a two-proportion z-test finds the rise significant (p < 0.05).
- ``out_of_range``: numbers below the reference's minimum or above its maximum; count > 0.
- ``unseen_category``: values of a categorical column the reference never had; count > 0.
- ``constant_column``: the values of a column with one distinct value in the window where
  the reference had several; flagged when so.

Every ``rate`` is ``count / rows`` of the window; ``reference_rate`` is the same share in the
reference where it has one (the missing rate). An **error** is a value a model was not
trained to take: a wrong type, a missing column, an unseen category; ``error_rows`` counts
the rows with at least one, ``error_rate`` their share. Values outside the range and missing
values are reported, not errors (a model extrapolates and imputes; a fresh sample of a
stable stream has values beyond the reference's extremes).

Everything but the row-level counts comes from the mergeable window profile
(``drift/profile.py``); the row-level counts (wrong types, rows with an error, which columns
the window has) are kept per chunk by a :class:`QualityCounter`, which adds up too — so a
window is checked chunk by chunk, and a window split in parts sums to the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from ..errors import InvalidInput
from .drift import statistics as st
from .drift.profile import ColumnProfile, ReferenceProfile

__all__ = ["CHECKS", "Check", "Conformed", "QualityCheck", "QualityCounter", "QualityResult",
           "conform", "quality_result"]

Check = Literal["schema_violation", "missing_rate_jump", "out_of_range", "unseen_category",
                "constant_column"]
CHECKS: tuple[Check, ...] = ("schema_violation", "missing_rate_jump", "out_of_range",
                             "unseen_category", "constant_column")
# Values shown by name for unseen categories.
_TOP_VALUES = 10


class QualityCheck(BaseModel):
    """One check of one column; ``values`` names what was counted (``below``/``above``,
    the most frequent unseen categories, ``wrong_type``/``missing_column``)."""

    model_config = ConfigDict(frozen=True)

    column: str
    check: Check
    count: int
    rate: float
    reference_rate: float | None = None
    flagged: bool
    detail: str
    values: dict[str, int] = {}


class QualityResult(BaseModel):
    """The checks of a window, and the rows with at least one error."""

    model_config = ConfigDict(frozen=True)

    rows: int
    checks: list[QualityCheck]
    error_rows: int
    error_rate: float
    missing_jump: float

    @property
    def flagged(self) -> list[QualityCheck]:
        return [c for c in self.checks if c.flagged]

    def check(self, column: str, check: Check) -> QualityCheck:
        """The ``check`` row of ``column``; unknown ones are an InvalidInput."""
        for found in self.checks:
            if found.column == column and found.check == check:
                return found
        raise InvalidInput(f"no {check} check of column {column!r} in the quality result",
                           field="column")

    def metrics(self) -> dict[str, float]:
        """Flat keys: ``quality.error_rate``, ``quality.errors`` (rows with an error),
        ``quality.<check>.count`` (values counted by flagged checks of that kind) and
        ``quality.column.<col>.<check>.rate``."""
        out: dict[str, float] = {"quality.error_rate": self.error_rate,
                                 "quality.errors": float(self.error_rows)}
        for name in CHECKS:
            out[f"quality.{name}.count"] = float(sum(c.count for c in self.checks
                                                     if c.check == name and c.flagged))
        for c in self.checks:
            out[f"quality.column.{c.column}.{c.check}.rate"] = c.rate
        return out


# --- row level: what a profile cannot hold ------------------------------------------------


@dataclass
class Conformed:
    """A chunk with every reference column in the type its profile counts, and what
    conforming it found row by row (``wrong``: per column, the values of another type,
    now missing; ``errors``: rows with an error; ``present``: reference columns the chunk
    had)."""

    frame: pd.DataFrame
    wrong: dict[str, np.ndarray]
    errors: np.ndarray
    present: set[str]

    def take(self, mask: np.ndarray) -> Conformed:
        """The rows where ``mask`` holds."""
        return Conformed(frame=self.frame.loc[mask].reset_index(drop=True),
                         wrong={k: v[mask] for k, v in self.wrong.items()},
                         errors=self.errors[mask], present=set(self.present))


def conform(reference: ReferenceProfile, frame: pd.DataFrame) -> Conformed:
    """Coerce ``frame``'s reference columns so the profile can count them, and find the
    rows with an error. A column the frame lacks is added as all missing (so counts line
    up across chunks); whether any chunk had it is in ``present``."""
    n = len(frame)
    out = frame.copy(deep=False)
    wrong: dict[str, np.ndarray] = {}
    errors = np.zeros(n, dtype=bool)
    present: set[str] = set()
    for column in reference.columns:
        name = column.name
        if name not in out.columns:
            out[name] = pd.Series(np.full(n, np.nan), index=out.index)
            continue
        present.add(name)
        series = out[name]
        if column.kind == "numeric":
            converted, bad = _numeric(series)
        else:
            converted, bad = _categorical(series)
            errors |= _unseen(column, converted)
        if converted is not series:
            out[name] = converted
        if bad is not None:
            wrong[name] = bad
            errors |= bad
    return Conformed(frame=out, wrong=wrong, errors=errors, present=present)


def _numeric(series: pd.Series) -> tuple[pd.Series, np.ndarray | None]:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)):
        return series, None
    # Text holding a number ("12.5") is read as the number; other text is a wrong type.
    coerced = pd.to_numeric(series, errors="coerce")
    bad = (series.notna() & coerced.isna()).to_numpy(dtype=bool)
    return coerced.astype("float64"), (bad if bad.any() else None)


def _categorical(series: pd.Series) -> tuple[pd.Series, np.ndarray | None]:
    if not pd.api.types.is_object_dtype(series.dtype):
        return series, None
    bad = series.map(lambda v: isinstance(v, list | dict | set | tuple)).to_numpy(dtype=bool)
    if not bad.any():
        return series, None
    return series.mask(bad), bad


def _unseen(column: ColumnProfile, series: pd.Series) -> np.ndarray:
    ref = column.categorical
    assert ref is not None
    if ref.other:  # the reference kept its top categories only: a new name may be a rare one
        return np.zeros(len(series), dtype=bool)
    keys = series if pd.api.types.is_string_dtype(series.dtype) else series.astype(str)
    return (series.notna() & ~keys.isin(ref.categories)).to_numpy(dtype=bool)


@dataclass
class QualityCounter:
    """Row-level counts of a window, added chunk by chunk (``add``) or window part by part
    (``merge``)."""

    rows: int = 0
    error_rows: int = 0
    wrong: dict[str, int] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)

    def add(self, chunk: Conformed) -> None:
        self.rows += len(chunk.frame)
        self.error_rows += int(chunk.errors.sum())
        for name, bad in chunk.wrong.items():
            self.wrong[name] = self.wrong.get(name, 0) + int(bad.sum())
        self.present |= chunk.present

    def merge(self, other: QualityCounter) -> QualityCounter:
        wrong = dict(self.wrong)
        for name, count in other.wrong.items():
            wrong[name] = wrong.get(name, 0) + count
        return QualityCounter(rows=self.rows + other.rows,
                              error_rows=self.error_rows + other.error_rows, wrong=wrong,
                              present=self.present | other.present)


# --- the checks -----------------------------------------------------------------------------


def quality_result(reference: ReferenceProfile, window: ReferenceProfile,
                   counter: QualityCounter, *, missing_jump: float = 0.05,
                   alpha: float = 0.05, required: Iterable[str] | None = None
                   ) -> QualityResult:
    """The checks of ``window`` (counted on ``reference``) with the counter's row counts.

    ``required`` are the columns whose absence is a schema violation (default: every
    reference column); a required column the window never had makes every row an error.
    """
    if not 0.0 <= missing_jump <= 1.0:
        raise InvalidInput(f"missing_jump must be between 0 and 1, got {missing_jump!r}",
                           field="missing_jump")
    rows = counter.rows
    needed = set(reference.names if required is None else required)
    present = {c.name: c for c in window.columns if c.name in counter.present}
    checks: list[QualityCheck] = []
    error_rows = counter.error_rows
    for ref in reference.columns:
        cur = present.get(ref.name)
        if cur is None:
            if ref.name in needed:
                checks.append(QualityCheck(
                    column=ref.name, check="schema_violation", count=rows, rate=1.0,
                    flagged=True, detail="the column is missing from the current data",
                    values={"missing_column": rows}))
                error_rows = rows
            continue
        wrong = counter.wrong.get(ref.name, 0)
        checks.append(QualityCheck(
            column=ref.name, check="schema_violation", count=wrong, rate=_share(wrong, rows),
            flagged=wrong > 0, values={"wrong_type": wrong} if wrong else {},
            detail=(f"{wrong:,} value(s) of another type than the reference's {ref.kind} "
                    f"{ref.dtype} (not counted as missing values)") if wrong
            else "types match the reference"))
        checks.append(_missing(ref, cur, reference.rows, rows, wrong, missing_jump, alpha))
        if ref.kind == "numeric":
            checks.append(_out_of_range(ref, cur, rows))
        else:
            checks.append(_unseen_check(ref, cur, rows))
        checks.append(_constant(ref, cur, rows))
    return QualityResult(rows=rows, checks=checks, error_rows=error_rows,
                         error_rate=_share(error_rows, rows), missing_jump=missing_jump)


def _share(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def _missing(ref: ColumnProfile, cur: ColumnProfile, ref_rows: int, rows: int, wrong: int,
             jump: float, alpha: float) -> QualityCheck:
    missing = max(cur.missing - wrong, 0)
    rate, ref_rate = _share(missing, rows), _share(ref.missing, ref_rows)
    flagged = False
    detail = f"{rate:.2%} missing (reference {ref_rate:.2%})"
    if rows and ref_rows and rate - ref_rate > jump:
        p = st.proportions_z_test(ref.missing, ref_rows, missing, rows).p_value
        flagged = p < alpha
        detail += (f": up {rate - ref_rate:.2%} (> {jump:.2%}), z-test p = {p:.2g}"
                   + ("" if flagged else f" (not significant at {alpha})"))
    return QualityCheck(column=ref.name, check="missing_rate_jump", count=missing, rate=rate,
                        reference_rate=ref_rate, flagged=flagged, detail=detail)


def _out_of_range(ref: ColumnProfile, cur: ColumnProfile, rows: int) -> QualityCheck:
    r, c = ref.numeric, cur.numeric
    assert r is not None and c is not None
    if r.min is None or r.max is None:
        return QualityCheck(column=ref.name, check="out_of_range", count=0, rate=0.0,
                            flagged=False, detail="the reference has no values: no range")
    # Cell 0 holds the values below the first edge (the reference minimum), the last cell
    # those above the last edge (its maximum).
    below, above = int(c.counts[0]), int(c.counts[-1])
    count = below + above
    return QualityCheck(
        column=ref.name, check="out_of_range", count=count, rate=_share(count, rows),
        reference_rate=0.0, flagged=count > 0, values={"below": below, "above": above},
        detail=f"{below:,} below {r.min:.6g}, {above:,} above {r.max:.6g} (the reference "
               "range)")


def _unseen_check(ref: ColumnProfile, cur: ColumnProfile, rows: int) -> QualityCheck:
    r, c = ref.categorical, cur.categorical
    assert r is not None and c is not None
    if r.other:
        return QualityCheck(
            column=ref.name, check="unseen_category", count=0, rate=0.0, flagged=False,
            detail=f"the reference kept its {len(r.categories):,} most frequent categories "
                   "only: a new value cannot be told from a rare one")
    count = sum(c.unseen.values()) + c.other
    top = dict(list(c.unseen.items())[:_TOP_VALUES])
    shown = ", ".join(f"{k!r} ({v:,})" for k, v in top.items())
    more = len(c.unseen) - len(top) + (1 if c.other else 0)
    detail = (f"{count:,} value(s) the reference never had: {shown}"
              + (f" and more ({more}+ names)" if more > 0 else "")) if count else \
        "every category is in the reference"
    return QualityCheck(column=ref.name, check="unseen_category", count=count,
                        rate=_share(count, rows), reference_rate=0.0, flagged=count > 0,
                        values=top, detail=detail)


def _distinct(profile: ColumnProfile) -> tuple[int | None, str | None]:
    """Distinct values (None when unknown) and the single value when there is one."""
    if profile.numeric is not None:
        n = profile.numeric
        if profile.count == 0 or n.min is None or n.max is None:
            return 0, None
        return (1, f"{n.min:.6g}") if n.min == n.max else (None, None)
    c = profile.categorical
    assert c is not None
    names = [k for k, v in zip(c.categories, c.counts, strict=True) if v] + list(c.unseen)
    if c.other:
        return None, None
    return len(names), (names[0] if len(names) == 1 else None)


def _constant(ref: ColumnProfile, cur: ColumnProfile, rows: int) -> QualityCheck:
    ref_distinct, ref_value = _distinct(ref)
    cur_distinct, cur_value = _distinct(cur)
    if ref_distinct is not None and ref_distinct <= 1:
        detail = (f"the reference is constant too ({ref_value})" if ref_value is not None
                  else "the reference has no values")
        flagged = False
    elif cur_distinct == 1:
        detail = f"one value ({cur_value}) in the window; the reference has several"
        flagged = True
    else:
        detail = "several values" if cur.count else "no values in the window"
        flagged = False
    count = cur.count if flagged else 0
    return QualityCheck(column=ref.name, check="constant_column", count=count,
                        rate=_share(count, rows), flagged=flagged, detail=detail)
