"""The drift detector: Evidently's defaults, configuration, verdicts, chunks and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelworks.errors import InvalidInput
from modelworks.monitoring import DriftDetector, ReferenceProfile
from modelworks.monitoring.drift import profile_window


def _claims(n: int, seed: int, *, shifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mix = [0.2, 0.2, 0.3, 0.3] if shifted else [0.4, 0.3, 0.2, 0.1]
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 0.8, size=n) * (1.25 if shifted else 1.0),
            "age": rng.normal(45, 12, size=n),
            "procedure": rng.choice(["xray", "mri", "lab", "surgery"], size=n, p=mix),
            "urgent": rng.random(n) < 0.2,
            "visits": rng.integers(0, 4, size=n),  # numeric with 4 distinct values
        }
    )


@pytest.mark.parametrize(
    ("n_ref", "expected"),
    [
        (1_000, {"amount": "ks", "age": "ks", "procedure": "chisquare", "urgent": "z",
                 "visits": "chisquare"}),
        (1_001, {"amount": "wasserstein", "age": "wasserstein", "procedure": "jensenshannon",
                 "urgent": "jensenshannon", "visits": "jensenshannon"}),
    ],
)
def test_default_methods_follow_evidently(n_ref: int, expected: dict[str, str]) -> None:
    result = DriftDetector().fit(_claims(n_ref, 1)).score(_claims(3_000, 2))
    assert {c.column: c.method for c in result.columns} == expected
    for column in result.columns:
        assert column.status == "scored" and column.reason
        assert str(n_ref) in column.reason.replace(",", "")


def test_binary_numeric_and_two_value_categorical_get_the_z_test() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"flag": rng.integers(0, 2, 500), "yes": rng.choice(["y", "n"], 500)})
    result = DriftDetector().fit(ref).score(ref.iloc[:200])
    assert [c.method for c in result.columns] == ["z", "z"]


def test_small_reference_tests_are_exact_on_values() -> None:
    ref, cur = _claims(800, 4), _claims(5_000, 5, shifted=True)
    result = DriftDetector().fit(ref).score(cur)
    amount = result.column("amount")
    expected = stats.ks_2samp(ref["amount"], cur["amount"])
    assert amount.value == pytest.approx(expected.statistic, abs=1e-12)
    assert amount.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert amount.bound == 0.0 and amount.drifted
    procedure = result.column("procedure")
    table = pd.crosstab(
        np.r_[np.zeros(800), np.ones(5_000)], np.r_[ref["procedure"], cur["procedure"]]
    ).to_numpy()
    assert procedure.p_value == pytest.approx(stats.chi2_contingency(table).pvalue, rel=1e-9)


def test_large_window_on_a_small_reference_keeps_exact_ks() -> None:
    ref, cur = _claims(700, 6), _claims(30_000, 7)  # window too big to keep values
    age = DriftDetector().fit(ref).score(cur).column("age")
    expected = stats.ks_2samp(ref["age"], cur["age"])
    assert age.bound == 0.0
    assert age.value == pytest.approx(expected.statistic, abs=1e-12)
    assert age.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_large_reference_statistics_are_within_their_bounds() -> None:
    ref, cur = _claims(40_000, 8), _claims(30_000, 9, shifted=True)
    result = DriftDetector().fit(ref).score(cur)
    amount = result.column("amount")
    raw = stats.wasserstein_distance(ref["amount"], cur["amount"]) / np.std(ref["amount"])
    assert amount.value is not None and amount.value <= raw + 1e-9
    assert raw <= amount.value + amount.bound + 1e-9
    procedure = result.column("procedure")
    ref_share = ref["procedure"].value_counts()
    cur_share = cur["procedure"].value_counts().reindex(ref_share.index, fill_value=0)
    assert procedure.value == pytest.approx(float(jensenshannon(ref_share, cur_share)), abs=1e-12)


def test_a_known_shift_is_detected_and_the_same_distribution_is_not() -> None:
    for n_ref, n_cur in [(600, 600), (20_000, 20_000)]:
        detector = DriftDetector().fit(_claims(n_ref, 10))
        same = detector.score(_claims(n_cur, 11))
        shifted = detector.score(_claims(n_cur, 12, shifted=True))
        assert same.drifted_columns <= 1 and not same.dataset_drift
        assert {c.column for c in shifted.columns if c.drifted} >= {"amount", "procedure"}
        assert not shifted.column("age").drifted


def test_dataset_drift_is_the_share_of_drifted_columns() -> None:
    detector = DriftDetector(drift_share=0.4).fit(_claims(5_000, 13))
    result = detector.score(_claims(5_000, 14, shifted=True))
    assert result.scored_columns == 5
    assert result.share == result.drifted_columns / 5
    assert result.dataset_drift == (result.share >= 0.4)


def test_methods_and_thresholds_are_configurable_per_column() -> None:
    ref, cur = _claims(5_000, 15), _claims(5_000, 16, shifted=True)
    detector = DriftDetector(
        methods={"amount": "psi", "age": "ks", "procedure": "chisquare", "visits": "wasserstein"},
        thresholds={"amount": 5.0, "age": 1e-6},
    ).fit(ref)
    result = detector.score(cur)
    amount = result.column("amount")
    assert (amount.method, amount.threshold, amount.statistic) == ("psi", 5.0, "PSI")
    assert amount.value is not None and amount.value > 0.02 and not amount.drifted
    assert amount.reason.startswith("configured: psi")
    age = result.column("age")
    assert age.method == "ks" and age.p_value is not None and age.score == age.p_value
    assert age.threshold == 1e-6
    assert result.column("procedure").method == "chisquare"
    assert result.column("urgent").threshold == 0.1  # default method, default threshold


def test_chunked_scoring_equals_scoring_the_whole() -> None:
    ref, cur = _claims(12_000, 17), _claims(25_000, 18, shifted=True)
    detector = DriftDetector().fit(ref)
    whole = detector.score(cur)
    chunked = detector.score_chunks(cur.iloc[i : i + 4_000] for i in range(0, len(cur), 4_000))
    for a, b in zip(whole.columns, chunked.columns, strict=True):
        assert (a.method, a.drifted) == (b.method, b.drifted)
        assert a.value == pytest.approx(b.value, rel=1e-9, abs=1e-12)
    assert whole.share == chunked.share


def test_a_stored_profile_fits_and_a_window_profile_scores() -> None:
    ref, cur = _claims(3_000, 19), _claims(3_000, 20)
    profile = DriftDetector().fit(ref).profile_
    stored = ReferenceProfile.model_validate_json(profile.model_dump_json())
    detector = DriftDetector().fit(stored)
    assert detector.score(profile_window(stored, cur)) == DriftDetector().fit(ref).score(cur)


# --- bad input -------------------------------------------------------------------------------


def test_a_missing_column_is_reported_not_raised() -> None:
    detector = DriftDetector().fit(_claims(2_000, 21))
    result = detector.score(_claims(2_000, 22).drop(columns=["age"]))
    age = result.column("age")
    assert age.status == "missing" and not age.drifted and "not in the current data" in age.reason
    assert result.missing_columns == ["age"] and result.scored_columns == 4


def test_a_constant_reference_is_handled() -> None:
    big = pd.DataFrame({"c": np.full(5_000, 3.0), "x": np.arange(5_000.0)})
    detector = DriftDetector(methods={"c": "wasserstein"}).fit(big)
    result = detector.score(pd.DataFrame({"c": np.full(100, 3.0), "x": np.arange(100.0)}))
    c = result.column("c")
    assert c.value == 0.0 and not c.drifted and "constant reference" in c.reason
    moved = detector.score(pd.DataFrame({"c": np.full(100, 3.5), "x": np.arange(100.0)}))
    assert moved.column("c").value == pytest.approx(0.5 / 0.001) and moved.column("c").drifted
    # by default a one-value column is discrete: Jensen-Shannon on values, as Evidently
    default = DriftDetector().fit(big).score(pd.DataFrame({"c": [3.0, 4.0], "x": [1.0, 2.0]}))
    assert default.column("c").method == "jensenshannon" and default.column("c").drifted
    small = DriftDetector().fit(big.iloc[:100]).score(big.iloc[:50])
    assert small.column("c").method == "z" and small.column("c").p_value == 1.0


def test_columns_without_values_are_empty_not_scored() -> None:
    ref = _claims(2_000, 23)
    ref["blank"] = np.nan
    cur = _claims(500, 24)
    cur["blank"] = np.nan
    cur["age"] = np.nan
    result = DriftDetector().fit(ref).score(cur)
    assert result.column("blank").status == "empty"
    assert "reference" in result.column("blank").reason
    assert result.column("age").status == "empty" and result.scored_columns == 4


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda d: d.score(_claims(0, 1)), "current"),
        (lambda d: d.score(pd.DataFrame({"other": [1, 2]})), "current"),
        (lambda d: d.score([1, 2, 3]), "current"),
        (lambda d: d.score_chunks(iter([])), "chunks"),
        (lambda d: d.score(_claims(10, 1).assign(age="x")), "age"),
        (lambda d: DriftDetector().score(_claims(10, 1)), "reference"),
        (lambda d: DriftDetector().fit(_claims(0, 1)), "reference"),
        (lambda d: DriftDetector(methods={"nope": "ks"}).fit(_claims(10, 1)), "methods"),
        (lambda d: DriftDetector(methods={"age": "magic"}).fit(_claims(10, 1)), "methods"),
        (lambda d: DriftDetector(methods={"procedure": "ks"}).fit(_claims(10, 1)), "methods"),
        (lambda d: DriftDetector(thresholds={"age": -1}).fit(_claims(10, 1)), "thresholds"),
        (lambda d: DriftDetector(drift_share=0).fit(_claims(10, 1)), "drift_share"),
    ],
)
def test_bad_input_is_an_invalid_input_naming_the_field(make: object, field: str) -> None:
    detector = DriftDetector().fit(_claims(300, 25))
    with pytest.raises(InvalidInput) as caught:
        make(detector)  # type: ignore[operator]
    assert caught.value.field == field
    assert str(caught.value)


def test_a_window_counted_on_another_reference_is_refused() -> None:
    first = DriftDetector().fit(_claims(3_000, 26))
    other = DriftDetector().fit(_claims(3_000, 27))
    with pytest.raises(InvalidInput) as caught:
        first.score(profile_window(other.profile_, _claims(100, 28)))
    assert caught.value.field == "current"
