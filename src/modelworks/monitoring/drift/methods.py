"""Drift methods: what each computes from two column profiles, and the default per column.

The defaults are Evidently 0.7's (``legacy/calculations/stattests/registry.py``,
``_get_default_stattest``), with ``n`` the reference's non-missing values and ``u`` the
distinct values in reference and current together:

| reference | column | ``u`` | method (drift when) |
| --- | --- | --- | --- |
| ``n ≤ 1000`` | numeric | ``> 5`` | ``ks``: KS p-value ≤ 0.05 |
| ``n ≤ 1000`` | numeric or categorical | ``3…`` (≤ 5 if numeric) | ``chisquare``: p < 0.05 |
| ``n ≤ 1000`` | numeric or categorical | ``≤ 2`` | ``z``: proportions z-test p < 0.05 |
| ``n > 1000`` | numeric | ``> 5`` | ``wasserstein``: normed distance ≥ 0.1 |
| ``n > 1000`` | numeric (``u ≤ 5``) or categorical | any | ``jensenshannon``: distance ≥ 0.1 |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from modelworks.errors import InvalidInput
from modelworks.monitoring.drift import statistics as st
from modelworks.monitoring.drift.profile import DISCRETE_MAX, RAW_REFERENCE_LIMIT, ColumnProfile

__all__ = ["METHODS", "Measure", "Method", "compute", "default_method", "distinct_union"]


@dataclass(frozen=True)
class Method:
    """A drift method: its statistic, the column kinds it takes and its default threshold.

    A test (``test=True``) flags drift when its p-value is below the threshold (at or below,
    for ``ks``, as Evidently); a distance flags drift at or above it.
    """

    name: str
    statistic: str
    kinds: tuple[str, ...]
    threshold: float
    test: bool
    inclusive: bool = False

    def drifted(self, score: float, threshold: float) -> bool:
        if self.test:
            return score <= threshold if self.inclusive else score < threshold
        return score >= threshold


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", "Kolmogorov-Smirnov D", ("numeric",), 0.05, test=True, inclusive=True),
        Method("chisquare", "chi-square", ("numeric", "categorical"), 0.05, test=True),
        Method("z", "proportions z", ("numeric", "categorical"), 0.05, test=True),
        Method("wasserstein", "Wasserstein distance (normed)", ("numeric",), 0.1, test=False),
        Method(
            "jensenshannon", "Jensen-Shannon distance", ("numeric", "categorical"), 0.1,
            test=False,
        ),
        Method("psi", "PSI", ("numeric", "categorical"), 0.1, test=False),
    )
}


class Measure(NamedTuple):
    """A method's outcome: statistic, p-value (tests), error bound of the statistic, how."""

    value: float
    p_value: float | None
    bound: float
    note: str


def compute(method: str, ref: ColumnProfile, cur: ColumnProfile, *, coarse_bins: int) -> Measure:
    """Compute ``method`` between a reference column and a window counted on it."""
    if method in ("ks", "wasserstein"):
        return _continuous(method, ref, cur)
    ref_counts, cur_counts, keys, how = category_vectors(ref, cur, coarse_bins=coarse_bins)
    if method == "chisquare":
        result = st.chi_square(ref_counts, cur_counts)
        return Measure(result.statistic, result.p_value, 0.0, how)
    if method == "z":
        present = (ref_counts + cur_counts) > 0
        first = min(k for k, p in zip(keys, present, strict=True) if p)
        i = keys.index(first)
        z = st.proportions_z_test(
            int(ref_counts[i]), int(ref_counts.sum()), int(cur_counts[i]), int(cur_counts.sum())
        )
        return Measure(z.statistic, z.p_value, 0.0, f"{how}; {first!r} against the rest")
    if method == "jensenshannon":
        return Measure(st.jensen_shannon(ref_counts, cur_counts), None, 0.0, how)
    if method == "psi":
        return Measure(st.psi(ref_counts, cur_counts), None, 0.0, how)
    raise InvalidInput(f"unknown drift method {method!r}; known: {', '.join(METHODS)}",
                       field="methods")


def _continuous(method: str, ref: ColumnProfile, cur: ColumnProfile) -> Measure:
    r, c = ref.numeric, cur.numeric
    assert r is not None and c is not None
    raw = r.values is not None and c.values is not None
    cells = f"from {len(r.counts)} reference cells"
    if method == "ks":
        if raw:
            assert r.values is not None and c.values is not None
            result = st.ks_statistic(r.values, c.values)
            return Measure(result.statistic, result.p_value, 0.0, "on values")
        bracket = st.ks_from_bins(r.counts, c.counts)
        p = st.ks_p_value(bracket.value, ref.count, cur.count)
        note = cells if bracket.bound else "exact " + cells
        return Measure(bracket.value, p, bracket.bound, note)
    std = float(np.std(r.values)) if r.values is not None else r.std
    norm = max(std, st.WASSERSTEIN_NORM_FLOOR)
    note = "" if std > 0 else "; constant reference: divided by the 0.001 floor, as Evidently"
    if raw:
        assert r.values is not None and c.values is not None
        return Measure(st.wasserstein(r.values, c.values) / norm, None, 0.0, "on values" + note)
    bracket = st.wasserstein_from_bins(r.edges, r.counts, r.sums, c.counts, c.sums)
    return Measure(bracket.value / norm, None, bracket.bound / norm, cells + note)


def category_vectors(
    ref: ColumnProfile, cur: ColumnProfile, *, coarse_bins: int
) -> tuple[np.ndarray, np.ndarray, list[Any], str]:
    """Counts per category for both sides, the category keys, and how they were formed.

    Categorical columns: the reference's categories, the window's unseen ones, then one
    ``other`` bucket. Numeric columns with at most ``DISCRETE_MAX`` reference values: one
    category per value (the window's new values too). Other numeric columns: about
    ``coarse_bins`` groups of reference cells of equal reference mass.
    """
    if ref.categorical is not None and cur.categorical is not None:
        r, c = ref.categorical, cur.categorical
        unseen = list(c.unseen)
        keys: list[Any] = [*r.categories, *unseen, "\uffff(other)"]
        ref_counts = np.array([*r.counts, *([0] * len(unseen)), r.other], dtype=float)
        cur_counts = np.array([*c.counts, *c.unseen.values(), c.other], dtype=float)
        return ref_counts, cur_counts, keys, "on categories"
    rn, cn = ref.numeric, cur.numeric
    assert rn is not None and cn is not None
    ref_cells = np.asarray(rn.counts, dtype=float)
    cur_cells = np.asarray(cn.counts, dtype=float)
    if rn.exact_edges and len(rn.edges) <= DISCRETE_MAX:
        novel = np.asarray(cn.novel_counts, dtype=float)
        keys = [*rn.edges, *cn.novel_values, float("inf")]
        ref_counts = np.concatenate(
            [ref_cells[1::2], np.zeros(novel.size), [ref_cells[0::2].sum()]]
        )
        cur_counts = np.concatenate(
            [cur_cells[1::2], novel, [cur_cells[0::2].sum() - novel.sum()]]
        )
        return ref_counts, cur_counts, keys, "on values"
    groups = st.coarsen(ref_cells, coarse_bins)
    size = int(groups.max()) + 1
    ref_counts = np.bincount(groups, weights=ref_cells, minlength=size)
    cur_counts = np.bincount(groups, weights=cur_cells, minlength=size)
    return ref_counts, cur_counts, list(range(size)), f"on {size} reference-quantile bins"


def distinct_union(ref: ColumnProfile, cur: ColumnProfile) -> int | None:
    """Distinct values in reference and window together; ``None`` when more than
    ``DISCRETE_MAX`` (or more than a categorical reference kept)."""
    if ref.categorical is not None and cur.categorical is not None:
        r, c = ref.categorical, cur.categorical
        if r.other or c.other:
            return None
        present = sum(1 for a, b in zip(r.counts, c.counts, strict=True) if a or b)
        total = present + len(c.unseen)
        return total if total <= DISCRETE_MAX else None
    rn, cn = ref.numeric, cur.numeric
    assert rn is not None and cn is not None
    if not rn.exact_edges or len(rn.edges) > DISCRETE_MAX or cn.novel_overflow:
        return None
    present = sum(1 for a, b in zip(rn.counts[1::2], cn.counts[1::2], strict=True) if a or b)
    total = present + len(cn.novel_values)
    return total if total <= DISCRETE_MAX else None


def default_method(ref: ColumnProfile, cur: ColumnProfile) -> tuple[str, str]:
    """Evidently 0.7's default method for the column, and the reason in words."""
    n = ref.count
    union = distinct_union(ref, cur)
    few = union is not None and union <= 5
    shown = f"{union}" if union is not None else f"more than {DISCRETE_MAX}"
    size = f"reference has {n:,} values ({'≤' if n <= RAW_REFERENCE_LIMIT else '>'} 1,000)"
    distinct = f"{shown} distinct values in reference and current"
    if n <= RAW_REFERENCE_LIMIT:
        if ref.kind == "numeric" and not few:
            return "ks", f"{size}, numeric with {distinct} (> 5): KS test"
        if union is not None and union <= 2:
            return "z", f"{size}, {ref.kind} with {distinct} (≤ 2): proportions z-test"
        return "chisquare", f"{size}, {ref.kind} with {distinct}: chi-square test"
    if ref.kind == "numeric" and not few:
        return "wasserstein", f"{size}, numeric with {distinct} (> 5): normed Wasserstein"
    return "jensenshannon", f"{size}, {ref.kind} with {distinct}: Jensen-Shannon distance"
