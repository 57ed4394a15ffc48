"""Drift statistics as pure functions: on raw samples, on count vectors and on reference cells.

On raw samples the results are SciPy's (``ks_2samp``, ``wasserstein_distance``,
``chi2_contingency``, ``jensenshannon``) to rounding, computed with sorting and cumulative
counts so they stay fast at millions of values.

**Cells.** A numeric reference profile cuts the line at its sorted, distinct edges
``e_1 < … < e_k`` into ``2k + 1`` cells, interleaved as
``(-inf, e_1), {e_1}, (e_1, e_2), {e_2}, …, {e_k}, (e_k, +inf)``: open intervals at even
positions, the edge points themselves at odd positions. Counting a value *at* an edge apart
from the values between edges makes both empirical CDFs exact at every edge, which is what
the error bounds of :func:`ks_from_bins` and :func:`wasserstein_from_bins` rest on; with a
small reference every distinct reference value is an edge and KS from cells is exact.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from modelworks.errors import InvalidInput

__all__ = [
    "KS_EXACT_MAX",
    "WASSERSTEIN_NORM_FLOOR",
    "Bracket",
    "TestResult",
    "chi_square",
    "coarsen",
    "jensen_shannon",
    "ks_from_bins",
    "ks_p_value",
    "ks_statistic",
    "proportions_z_test",
    "psi",
    "wasserstein",
    "wasserstein_from_bins",
    "wasserstein_normed",
]

# ks_2samp computes the exact p-value while both samples have at most this many values and
# uses the asymptotic distribution beyond; keeping the same rule keeps SciPy's p-values.
KS_EXACT_MAX = 10_000
# Evidently divides the Wasserstein distance by max(std(reference), 0.001).
WASSERSTEIN_NORM_FLOOR = 0.001

FloatArray = NDArray[np.float64]


class TestResult(NamedTuple):
    """A test statistic and its two-sided p-value."""

    statistic: float
    p_value: float


class Bracket(NamedTuple):
    """A statistic computed from cells: the estimate and the interval the raw value lies in."""

    value: float
    low: float
    high: float

    @property
    def bound(self) -> float:
        """The largest possible distance between ``value`` and the raw-sample statistic."""
        return max(self.value - self.low, self.high - self.value)


# --- raw samples -------------------------------------------------------------------------


def ks_statistic(reference: ArrayLike, current: ArrayLike) -> TestResult:
    """Two-sample Kolmogorov-Smirnov D and p-value, as ``scipy.stats.ks_2samp`` (two-sided).

    Up to ``KS_EXACT_MAX`` values per side SciPy's exact p-value is used; beyond, D comes from
    one sort of each sample and the p-value from SciPy's asymptotic distribution, as
    ``ks_2samp(method="auto")`` does.
    """
    ref = _sample(reference, "reference")
    cur = _sample(current, "current")
    if max(ref.size, cur.size) <= KS_EXACT_MAX:
        result = stats.ks_2samp(ref, cur)
        return TestResult(float(result.statistic), float(result.pvalue))
    _, diffs, last_of_run = _merged_ecdf(ref, cur)
    d = float(np.abs(diffs[last_of_run]).max())
    return TestResult(d, ks_p_value(d, ref.size, cur.size))


def ks_p_value(d: float, n_reference: int, n_current: int) -> float:
    """The p-value of D by SciPy's asymptotic rule (``ks_2samp(method="asymp")``)."""
    m, n = sorted([float(n_reference), float(n_current)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def wasserstein(reference: ArrayLike, current: ArrayLike) -> float:
    """First Wasserstein distance ``∫|F_ref - F_cur|``, as ``scipy.stats.wasserstein_distance``."""
    ref = _sample(reference, "reference")
    cur = _sample(current, "current")
    merged, diffs, _ = _merged_ecdf(ref, cur)
    return float(np.dot(np.abs(diffs[:-1]), np.diff(merged)))


def wasserstein_normed(reference: ArrayLike, current: ArrayLike) -> float:
    """Wasserstein distance divided by ``max(std(reference), 0.001)`` (population std).

    This is Evidently 0.7's ``wasserstein`` drift score (``_wasserstein_distance_norm``): the
    distance in units of the reference's standard deviation, so a threshold of 0.1 means
    "the distribution moved by a tenth of a standard deviation"; the 0.001 floor keeps a
    constant reference finite.
    """
    ref = _sample(reference, "reference")
    return wasserstein(ref, current) / max(float(np.std(ref)), WASSERSTEIN_NORM_FLOOR)


def _merged_ecdf(
    ref: FloatArray, cur: FloatArray
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Both samples merged in order, ``F_ref - F_cur`` after each value, last-of-ties mask.

    One sort per sample and one linear merge (reference first among ties); the difference at
    the last value of a run of ties is the difference of the right-continuous ECDFs there.
    """
    a = np.sort(ref)
    b = np.sort(cur)
    from_ref = np.zeros(a.size + b.size, dtype=bool)
    from_ref[np.arange(a.size) + np.searchsorted(b, a, side="left")] = True
    merged = np.empty(a.size + b.size)
    merged[from_ref] = a
    merged[~from_ref] = b
    ref_seen = np.cumsum(from_ref)
    cur_seen = np.arange(1, merged.size + 1) - ref_seen
    diffs = ref_seen / a.size - cur_seen / b.size
    last_of_run = np.empty(merged.size, dtype=bool)
    last_of_run[:-1] = merged[1:] != merged[:-1]
    last_of_run[-1] = True
    return merged, diffs, last_of_run


# --- count vectors -------------------------------------------------------------------------


def chi_square(reference_counts: ArrayLike, current_counts: ArrayLike) -> TestResult:
    """Pearson's chi-square test of the 2xk table (reference row, current row).

    The same statistic and p-value as ``scipy.stats.chi2_contingency(table)``: expected counts
    from the margins, ``k - 1`` degrees of freedom, and Yates' continuity correction only when
    ``k == 2`` (one degree of freedom), as SciPy applies it by default. Categories empty on both
    sides are dropped first (SciPy refuses them; they carry no information); one category
    left gives statistic 0 and p-value 1, as SciPy does for zero degrees of freedom.
    """
    ref, cur = _count_pair(reference_counts, current_counts)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] <= 1:
        return TestResult(0.0, 1.0)
    rows = table.sum(axis=1)
    expected = np.outer(rows, table.sum(axis=0)) / rows.sum()
    if table.shape[1] == 2:
        diff = expected - table
        table = table + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(((table - expected) ** 2 / expected).sum())
    return TestResult(statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1)))


def jensen_shannon(p: ArrayLike, q: ArrayLike, *, base: float | None = None) -> float:
    """Jensen-Shannon *distance* (the square root of the divergence), as SciPy's ``jensenshannon``.

    ``p`` and ``q`` are counts or proportions over the same categories (each is normalised);
    the natural logarithm by default, as SciPy and Evidently use, so the distance is at most
    ``sqrt(ln 2) ≈ 0.833``; ``base=2`` bounds it by 1.
    """
    ref, cur = _count_pair(p, q, names=("p", "q"))
    ref = ref / ref.sum()
    cur = cur / cur.sum()
    mid = (ref + cur) / 2.0
    divergence = float(special.rel_entr(ref, mid).sum() + special.rel_entr(cur, mid).sum())
    if base is not None:
        if not base > 0 or base == 1:
            raise InvalidInput(f"base must be positive and not 1, got {base!r}", field="base")
        divergence /= math.log(base)
    return math.sqrt(max(divergence, 0.0) / 2.0)


def psi(reference: ArrayLike, current: ArrayLike, *, eps: float | None = None) -> float:
    """Population stability index ``Σ (r - c)·ln(r / c)`` over proportions of the same bins.

    Counts are normalised to proportions. Empty bins are filled so the logarithm stays finite:
    with ``eps`` by ``eps``; by default as Evidently fills them — each side's zeros become
    ``0.0001``, or a millionth of its smallest non-zero proportion when that is ``≤ 0.0001``.
    """
    ref, cur = _count_pair(reference, current)
    ref = _fill_zeros(ref / ref.sum(), eps)
    cur = _fill_zeros(cur / cur.sum(), eps)
    return float(((ref - cur) * np.log(ref / cur)).sum())


def proportions_z_test(
    reference_successes: int, reference_total: int, current_successes: int, current_total: int
) -> TestResult:
    """Two-proportion z-test with a pooled variance, two-sided, as Evidently's ``z`` test.

    ``z = (p_ref - p_cur) / sqrt(P(1 - P)(1/n_ref + 1/n_cur))`` with ``P`` the pooled share;
    when every value is the same category (``P`` is 0 or 1) the result is ``z = 0, p = 1``.
    The p-value is ``2·sf(|z|)`` (Evidently writes ``2·(1 - cdf(|z|))``, which equals it but
    rounds to 0 sooner).
    """
    for name, value, total in (
        ("reference_successes", reference_successes, reference_total),
        ("current_successes", current_successes, current_total),
    ):
        if total <= 0:
            raise InvalidInput(f"{name.split('_')[0]}_total must be positive", field=name)
        if not 0 <= value <= total:
            raise InvalidInput(f"{name} must be between 0 and the total", field=name)
    p_ref = reference_successes / reference_total
    p_cur = current_successes / current_total
    pooled = (reference_successes + current_successes) / (reference_total + current_total)
    variance = pooled * (1.0 - pooled) * (1.0 / reference_total + 1.0 / current_total)
    if variance <= 0.0:
        return TestResult(0.0, 1.0)
    z = (p_ref - p_cur) / math.sqrt(variance)
    return TestResult(z, float(2.0 * stats.norm.sf(abs(z))))


def _fill_zeros(props: FloatArray, eps: float | None) -> FloatArray:
    if eps is None:
        nonzero = props[props > 0]
        smallest = float(nonzero.min()) if nonzero.size else 1.0
        eps = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    elif not eps > 0:
        raise InvalidInput(f"eps must be positive, got {eps!r}", field="eps")
    return np.where(props == 0, eps, props)


# --- reference cells -----------------------------------------------------------------------


def ks_from_bins(reference_counts: ArrayLike, current_counts: ArrayLike) -> Bracket:
    """KS D from counts in the reference cells (see the module docstring), with its bound.

    Both ECDFs are exact at every edge, from the left and from the right, so the largest
    difference seen there, ``D_bins``, is attained by the raw samples too, and inside an open
    cell each ECDF moves by at most that cell's mass. Hence

        ``D_bins ≤ D_raw ≤ D_bins + max over open cells of min(r_cell, c_cell)``

    with ``r_cell``, ``c_cell`` the cell's shares of the reference and the current values.
    Quantile cells of a reference hold about ``1/bins`` of it each, so the bound is at most
    about ``1/bins``; cells with no reference values (every cell, when every reference value
    is an edge) add no error, and neither do cells with no current values.
    """
    ref, cur = _cell_counts(reference_counts, current_counts)
    n_ref, n_cur = ref.sum(), cur.sum()
    diffs = np.cumsum(ref) / n_ref - np.cumsum(cur) / n_cur
    d = float(np.abs(diffs).max())
    slack = float(np.minimum(ref[0::2] / n_ref, cur[0::2] / n_cur).max())
    return Bracket(d, d, d + slack)


def wasserstein_from_bins(
    edges: ArrayLike,
    reference_counts: ArrayLike,
    reference_sums: ArrayLike,
    current_counts: ArrayLike,
    current_sums: ArrayLike,
) -> Bracket:
    """Wasserstein distance from counts and value sums in the reference cells, with bounds.

    ``W = ∫|F_ref - F_cur| dx``. Both ECDFs are exact at the edges, and a cell's value sum
    gives ``∫F`` over that cell exactly (``∫_a^b F = (b - a)·F(a) + (count·b - sum)/n``;
    the outer cells likewise, unbounded as they are), so ``S = ∫(F_ref - F_cur)`` is exact
    per cell. Where the difference cannot change sign inside a cell — its range
    ``[g(a) - c_cell, g(a) + r_cell]`` excludes 0, or one side has no values there —
    ``∫|g| = |S|`` exactly. Elsewhere ``|S| ≤ ∫|g| ≤ min(S - 2Lw, -S + 2Uw, w·max(-L, U))``
    for ``g ∈ [L, U]`` on width ``w`` (outer cells: ``∫F_ref + ∫F_cur``).

    Returns:
        ``low`` and ``high`` sum those per-cell bounds, so ``low ≤ W_raw ≤ high`` always.
        ``value`` is ``low``: exact when the difference keeps its sign inside every cell,
        never an overestimate, and in practice within a few thousandths of a standard
        deviation at 100 reference-quantile cells (the guaranteed ``high`` is loose where a
        wide tail cell holds values of both sides).
    """
    edge = np.asarray(edges, dtype=float)
    ref, cur = _cell_counts(reference_counts, current_counts)
    ref_sum = np.asarray(reference_sums, dtype=float)
    cur_sum = np.asarray(current_sums, dtype=float)
    if edge.ndim != 1 or ref.size != 2 * edge.size + 1 or ref_sum.shape != ref.shape or (
        cur_sum.shape != cur.shape
    ):
        raise InvalidInput(
            f"{edge.size} edges need {2 * edge.size + 1} cell counts and sums each",
            field="edges",
        )
    if edge.size == 0:
        raise InvalidInput("the Wasserstein distance from cells needs at least one edge",
                           field="edges")
    n_ref, n_cur = ref.sum(), cur.sum()
    low, high = 0.0, 0.0
    # Open cells: index o = 0..k at position 2o; share and ∫F per open cell, per side.
    r_share, c_share = ref[0::2] / n_ref, cur[0::2] / n_cur
    # F just after each edge (after its point cell): positions 1, 3, ...
    f_ref = (np.cumsum(ref) / n_ref)[1::2]
    f_cur = (np.cumsum(cur) / n_cur)[1::2]
    if edge.size > 1:
        width = np.diff(edge)
        hi_edge = edge[1:]
        inner = slice(1, edge.size)
        g0 = f_ref[:-1] - f_cur[:-1]
        s = width * g0 + (
            (ref[2:-1:2] * hi_edge - ref_sum[2:-1:2]) / n_ref
            - (cur[2:-1:2] * hi_edge - cur_sum[2:-1:2]) / n_cur
        )
        lower_g = g0 - c_share[inner]
        upper_g = g0 + r_share[inner]
        decided = (lower_g >= 0) | (upper_g <= 0)
        abs_s = np.abs(s)
        cap = np.minimum.reduce([
            s - 2 * lower_g * width,
            -s + 2 * upper_g * width,
            width * np.maximum(-lower_g, upper_g),
        ])
        cap = np.where(decided, abs_s, np.maximum(cap, abs_s))
        low += float(abs_s.sum())
        high += float(cap.sum())
    # Outer cells: ∫_{-inf}^{e_1} F and ∫_{e_k}^{inf} (1 - F), exact from the sums.
    for r_int, c_int, r_part, c_part in (
        (
            (ref[0] * edge[0] - ref_sum[0]) / n_ref,
            (cur[0] * edge[0] - cur_sum[0]) / n_cur,
            ref[0],
            cur[0],
        ),
        (
            (ref_sum[-1] - ref[-1] * edge[-1]) / n_ref,
            (cur_sum[-1] - cur[-1] * edge[-1]) / n_cur,
            ref[-1],
            cur[-1],
        ),
    ):
        exact = abs(r_int - c_int)
        outer_high = exact if r_part == 0 or c_part == 0 else r_int + c_int
        low += exact
        high += outer_high
    return Bracket(low, low, high)


def coarsen(reference_counts: ArrayLike, bins: int) -> NDArray[np.intp]:
    """A group index per cell: consecutive cells gathered into about ``bins`` groups of
    roughly equal reference mass (a heavy point cell stays a group of its own).

    Used to compute PSI, Jensen-Shannon and chi-square on a numeric column at a bin count
    that suits them; summing both sides' cell counts by group is exact.
    """
    ref = np.asarray(reference_counts, dtype=float)
    if bins < 1:
        raise InvalidInput(f"bins must be >= 1, got {bins!r}", field="bins")
    total = ref.sum()
    if total <= 0:
        return np.zeros(ref.size, dtype=np.intp)
    before = (np.cumsum(ref) - ref) / total
    group = np.minimum(np.floor(before * bins + 1e-12), bins - 1).astype(np.intp)
    # Renumber to consecutive group ids (a heavy cell may skip some).
    _, dense = np.unique(group, return_inverse=True)
    return dense.astype(np.intp)


# --- input checks --------------------------------------------------------------------------


def _sample(values: ArrayLike, field: str) -> FloatArray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise InvalidInput(f"{field} has no values", field=field)
    if not np.isfinite(array).all():
        raise InvalidInput(f"{field} holds NaN or infinite values; drop them first", field=field)
    return array


def _count_pair(
    a: ArrayLike, b: ArrayLike, *, names: tuple[str, str] = ("reference", "current")
) -> tuple[FloatArray, FloatArray]:
    first = np.asarray(a, dtype=float).ravel()
    second = np.asarray(b, dtype=float).ravel()
    if first.shape != second.shape:
        raise InvalidInput(
            f"{names[0]} and {names[1]} need one count per category each, got {first.size} and"
            f" {second.size}",
            field=names[1],
        )
    for name, array in zip(names, (first, second), strict=True):
        if not np.isfinite(array).all() or (array < 0).any():
            raise InvalidInput(f"{name} counts must be finite and non-negative", field=name)
        if array.sum() <= 0:
            raise InvalidInput(f"{name} has no counts", field=name)
    return first, second


def _cell_counts(a: ArrayLike, b: ArrayLike) -> tuple[FloatArray, FloatArray]:
    ref, cur = _count_pair(a, b)
    if ref.size % 2 == 0:
        raise InvalidInput(
            f"cell counts come in 2k + 1 cells for k edges, got {ref.size}", field="reference"
        )
    return ref, cur
