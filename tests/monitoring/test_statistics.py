"""Drift statistics agree with SciPy on raw samples; their binned forms keep their bounds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelworks.errors import InvalidInput
from modelworks.monitoring.drift import statistics as st
from modelworks.monitoring.drift._values import count_cells as _cells
from modelworks.monitoring.drift._values import quantile_edges as _quantile_edges

TOL = 1e-9


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Random sample pairs: different sizes, shifts, heavy ties, and both KS p-value regimes."""
    rng = np.random.default_rng(20240601)
    pairs = []
    for n_ref, n_cur in [(7, 5), (50, 300), (999, 1000), (1000, 4000), (3000, 12_000),
                         (20_000, 15_000)]:
        pairs.append((rng.normal(size=n_ref), rng.normal(0.2, 1.3, size=n_cur)))
        # heavy ties: few distinct values on both sides
        pairs.append((rng.integers(0, 6, size=n_ref).astype(float),
                      rng.integers(1, 8, size=n_cur).astype(float)))
        pairs.append((np.round(rng.lognormal(size=n_ref), 1),
                      np.round(rng.lognormal(0.1, 1.0, size=n_cur), 1)))
    same = rng.normal(size=400)
    pairs.append((same, same.copy()))
    return pairs


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: f"{p[0].size}x{p[1].size}")
def test_raw_statistics_agree_with_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = pair
    ks = st.ks_statistic(ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert ks.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert ks.p_value == pytest.approx(expected.pvalue, abs=TOL, rel=TOL)
    assert st.wasserstein(ref, cur) == pytest.approx(
        stats.wasserstein_distance(ref, cur), abs=TOL, rel=TOL
    )
    assert st.wasserstein_normed(ref, cur) == pytest.approx(
        stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001), abs=TOL, rel=TOL
    )


def test_wasserstein_normed_floors_a_constant_reference() -> None:
    assert st.wasserstein_normed([2.0] * 10, [2.0, 2.5]) == pytest.approx(0.25 / 0.001)


@pytest.mark.parametrize("k", [2, 3, 5, 12])
def test_chi_square_agrees_with_chi2_contingency(k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(5):
        ref = rng.integers(1, 200, size=k)
        cur = rng.integers(1, 50, size=k)
        expected = stats.chi2_contingency(np.vstack([ref, cur]))
        result = st.chi_square(ref, cur)
        assert result.statistic == pytest.approx(expected.statistic, abs=TOL, rel=TOL)
        assert result.p_value == pytest.approx(expected.pvalue, abs=TOL, rel=TOL)


def test_chi_square_drops_categories_empty_on_both_sides() -> None:
    expected = stats.chi2_contingency(np.array([[10, 20, 5], [12, 9, 30]]))
    result = st.chi_square([10, 0, 20, 5], [12, 0, 9, 30])
    assert result.statistic == pytest.approx(expected.statistic, rel=TOL)
    assert st.chi_square([4, 0], [9, 0]) == (0.0, 1.0)


def test_chi_square_applies_yates_only_for_two_categories() -> None:
    table = np.array([[30, 10], [20, 25]])
    corrected = stats.chi2_contingency(table)
    uncorrected = stats.chi2_contingency(table, correction=False)
    assert corrected.statistic != pytest.approx(uncorrected.statistic)
    assert st.chi_square(table[0], table[1]).statistic == pytest.approx(corrected.statistic)


@pytest.mark.parametrize("base", [None, 2.0, 10.0])
def test_jensen_shannon_agrees_with_scipy(base: float | None) -> None:
    rng = np.random.default_rng(3)
    for size in (2, 5, 40):
        p = rng.integers(0, 100, size=size).astype(float)
        q = rng.integers(0, 100, size=size).astype(float)
        p[0] += 1
        q[-1] += 1
        assert st.jensen_shannon(p, q, base=base) == pytest.approx(
            float(jensenshannon(p, q, base=base)), abs=TOL
        )
    assert st.jensen_shannon([1, 0], [0, 1]) == pytest.approx(np.sqrt(np.log(2)))


def test_psi_fills_empty_bins_as_evidently_does() -> None:
    ref = np.array([0.5, 0.3, 0.2, 0.0])
    cur = np.array([0.4, 0.3, 0.2, 0.1])
    filled = np.array([0.5, 0.3, 0.2, 0.0001])
    assert st.psi(ref, cur) == pytest.approx(float(((filled - cur) * np.log(filled / cur)).sum()))
    assert st.psi(ref * 1000, cur * 50) == pytest.approx(st.psi(ref, cur))  # counts work too
    assert st.psi(ref, ref) == 0.0
    tiny = np.array([0.99995, 0.00005, 0.0])
    fill = 0.00005 / 10**6
    expected = np.array([0.99995, 0.00005, fill])
    other = np.array([0.9, 0.05, 0.05])
    assert st.psi(tiny, other) == pytest.approx(
        float(((expected - other) * np.log(expected / other)).sum())
    )


def test_proportions_z_test_matches_the_uncorrected_two_by_two_chi_square() -> None:
    table = np.array([[130, 870], [90, 410]])
    z = st.proportions_z_test(130, 1000, 90, 500)
    chi = stats.chi2_contingency(table, correction=False)
    assert z.statistic**2 == pytest.approx(chi.statistic, rel=TOL)
    assert z.p_value == pytest.approx(chi.pvalue, rel=TOL)
    assert z.statistic < 0  # 13% against 18%
    assert st.proportions_z_test(0, 10, 0, 20) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: st.ks_statistic([], [1.0]), "reference"),
        (lambda: st.wasserstein([1.0], [np.nan]), "current"),
        (lambda: st.chi_square([1, 2], [1, 2, 3]), "current"),
        (lambda: st.chi_square([0, 0], [1, 2]), "reference"),
        (lambda: st.jensen_shannon([1, -1], [1, 1]), "p"),
        (lambda: st.psi([1, 2], [1, 2], eps=0.0), "eps"),
        (lambda: st.proportions_z_test(5, 0, 1, 2), "reference_successes"),
        (lambda: st.ks_from_bins([1, 2], [3, 4]), "reference"),
    ],
)
def test_bad_input_names_the_argument(call: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()  # type: ignore[operator]
    assert caught.value.field == field


# --- binned ------------------------------------------------------------------------------------


def _binned_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    cases = []
    for trial in range(24):
        n_ref = int(rng.integers(1_500, 40_000))
        n_cur = int(rng.integers(200, 40_000))
        shift, scale = rng.normal(0, 0.3), float(np.exp(rng.normal(0, 0.2)))
        kind = ["normal", "lognormal", "zero-inflated", "integers"][trial % 4]
        if kind == "normal":
            ref, cur = rng.normal(size=n_ref), rng.normal(shift, scale, size=n_cur)
        elif kind == "lognormal":
            ref, cur = rng.lognormal(size=n_ref), rng.lognormal(shift, scale, size=n_cur)
        elif kind == "zero-inflated":
            ref = np.where(rng.random(n_ref) < 0.4, 0.0, rng.exponential(size=n_ref))
            cur = np.where(rng.random(n_cur) < 0.3, 0.0, rng.exponential(scale, size=n_cur))
        else:
            ref = rng.poisson(30, size=n_ref).astype(float)
            cur = rng.poisson(30 + 5 * shift, size=n_cur).astype(float)
        cases.append((kind, ref, cur))
    return cases


@pytest.mark.parametrize("bins", [10, 100])
def test_binned_ks_and_wasserstein_keep_their_bounds(bins: int) -> None:
    for kind, ref, cur in _binned_cases():
        edges = _quantile_edges(np.sort(ref), bins)
        ref_counts, ref_sums, _ = _cells(edges, ref)
        cur_counts, cur_sums, _ = _cells(edges, cur)
        raw_d = stats.ks_2samp(ref, cur).statistic
        ks = st.ks_from_bins(ref_counts, cur_counts)
        assert ks.low - 1e-12 <= raw_d <= ks.high + 1e-12, kind
        # the stated a-priori bound: the largest open-cell mass of either side
        open_mass = max((ref_counts[0::2] / ref.size).max(), (cur_counts[0::2] / cur.size).max())
        assert raw_d - ks.value <= open_mass + 1e-12, kind
        raw_w = stats.wasserstein_distance(ref, cur)
        w = st.wasserstein_from_bins(edges, ref_counts, ref_sums, cur_counts, cur_sums)
        assert w.low - 1e-9 <= raw_w <= w.high + 1e-9, kind
        assert w.value == w.low
        # in practice the estimate is much closer than the guaranteed bracket
        assert abs(w.value - raw_w) <= 0.02 * np.std(ref) + 1e-12, kind


def test_ks_from_bins_is_exact_when_every_reference_value_is_an_edge() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=800)
    cur = rng.normal(0.1, 1.0, size=50_000)
    edges = np.unique(ref)
    ks = st.ks_from_bins(_cells(edges, ref)[0], _cells(edges, cur)[0])
    expected = stats.ks_2samp(ref, cur)
    assert ks.low == ks.high
    assert ks.value == pytest.approx(expected.statistic, abs=1e-12)
    assert st.ks_p_value(ks.value, ref.size, cur.size) == pytest.approx(expected.pvalue, rel=TOL)


def test_binned_wasserstein_is_exact_without_sign_changes_inside_cells() -> None:
    rng = np.random.default_rng(8)
    ref = rng.normal(size=20_000)
    cur = ref + 3.0  # far apart: F_ref - F_cur keeps its sign everywhere
    edges = _quantile_edges(np.sort(ref), 50)
    counts, sums, _ = _cells(edges, ref)
    cur_counts, cur_sums, _ = _cells(edges, cur)
    w = st.wasserstein_from_bins(edges, counts, sums, cur_counts, cur_sums)
    assert w.low == pytest.approx(w.high)
    assert w.value == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)


def test_coarsen_groups_cells_by_reference_mass() -> None:
    counts = np.array([0, 40, 0, 10, 5, 10, 5, 10, 0, 20, 0])
    groups = st.coarsen(counts, 4)
    assert groups.tolist() == sorted(groups.tolist())
    sums = np.bincount(groups, weights=counts)
    assert sums.sum() == counts.sum()
    assert sums[0] >= 40  # the heavy point cell is a group of its own (with empty neighbours)
