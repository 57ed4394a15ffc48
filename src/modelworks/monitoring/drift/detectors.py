"""The drift detector: ``fit(reference)`` keeps a profile, ``score(current)`` compares.

    detector = DriftDetector(thresholds={"amount": 0.2}).fit(reference_df)
    result = detector.score(current_df)          # or score_chunks(frames), or a window profile
    result.dataset_drift, result.column("amount").drifted

Each column gets Evidently 0.7's default method for its type and the reference's size (see
``methods``) unless ``methods`` names one; the dataset drifts when the share of drifted
columns reaches ``drift_share`` (0.5, as Evidently's ``DataDriftPreset``).

Bad input gives a result or an InvalidInput, never a crash: a reference column absent from
the current data is reported with ``status="missing"`` (and left out of the share); a
column with no values on either side is ``status="empty"``; empty current data, or current
data with none of the reference's columns, is an InvalidInput naming ``current``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from modelworks.errors import InvalidInput
from modelworks.monitoring.drift.methods import METHODS, compute, default_method
from modelworks.monitoring.drift.profile import (
    ColumnProfile,
    ReferenceProfile,
    merge,
    profile_reference,
    profile_window,
)

__all__ = ["ColumnDrift", "DriftDetector", "DriftResult"]


class ColumnDrift(BaseModel):
    """One column's drift verdict.

    ``value`` is the method's statistic; ``score`` is what meets ``threshold``: the p-value
    of a test, the value of a distance. ``bound`` is how far ``value`` may be from the same
    statistic on the raw values when it was computed from reference cells (0 when exact).
    """

    model_config = ConfigDict(frozen=True)

    column: str
    kind: Literal["numeric", "categorical"]
    status: Literal["scored", "missing", "empty"]
    method: str | None = None
    statistic: str | None = None
    value: float | None = None
    p_value: float | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool = False
    bound: float = 0.0
    reference_count: int
    current_count: int = 0
    reason: str


class DriftResult(BaseModel):
    """Per-column verdicts and the dataset verdict: ``share`` of scored columns drifted,
    ``dataset_drift`` when ``share ≥ drift_share`` (as Evidently)."""

    model_config = ConfigDict(frozen=True)

    columns: list[ColumnDrift]
    scored_columns: int
    drifted_columns: int
    share: float
    drift_share: float
    dataset_drift: bool
    missing_columns: list[str]
    reference_rows: int
    current_rows: int

    def column(self, name: str) -> ColumnDrift:
        """The verdict for column ``name``; an unknown name is an InvalidInput."""
        for column in self.columns:
            if column.column == name:
                return column
        raise InvalidInput(f"no column {name!r} in the drift result", field="column")


class DriftDetector:
    """Detect drift per column and for the dataset, estimator style.

    Args:
        columns: reference columns to compare (default: every numeric and categorical one).
        methods: a method per column (``ks``, ``chisquare``, ``z``, ``wasserstein``,
            ``jensenshannon``, ``psi``) instead of the default.
        thresholds: a threshold per column instead of the method's default.
        drift_share: share of drifted columns at which the dataset drifts.
        bins: reference-quantile cells per numeric column (more cells, tighter bounds).
        max_categories: categories kept by name per categorical column.
        coarse_bins: bins for PSI, Jensen-Shannon and chi-square on a numeric column with
            many values.
    """

    def __init__(
        self,
        *,
        columns: list[str] | None = None,
        methods: Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        drift_share: float = 0.5,
        bins: int = 100,
        max_categories: int = 1_000,
        coarse_bins: int = 20,
    ) -> None:
        self.columns = columns
        self.methods = dict(methods or {})
        self.thresholds = dict(thresholds or {})
        self.drift_share = drift_share
        self.bins = bins
        self.max_categories = max_categories
        self.coarse_bins = coarse_bins

    def fit(self, reference: pd.DataFrame | ReferenceProfile) -> DriftDetector:
        """Profile the reference (or take a stored profile) and check the configuration."""
        if isinstance(reference, ReferenceProfile):
            if reference.role != "reference":
                raise InvalidInput("fit takes a reference profile, not a window",
                                   field="reference")
            profile = reference
        else:
            profile = profile_reference(
                reference, columns=self.columns, bins=self.bins,
                max_categories=self.max_categories,
            )
        self._check_options(profile)
        self.profile_ = profile
        return self

    def score(self, current: pd.DataFrame | ReferenceProfile) -> DriftResult:
        """Compare current data (a frame, or a window profile counted on the reference)."""
        reference = self._fitted()
        if isinstance(current, ReferenceProfile):
            window = current
        else:
            if not isinstance(current, pd.DataFrame):
                raise InvalidInput(
                    f"current must be a pandas DataFrame or a window profile, got"
                    f" {type(current).__name__}",
                    field="current",
                )
            window = profile_window(reference, current)
        return self._compare(reference, window)

    def score_chunks(self, chunks: Iterable[pd.DataFrame]) -> DriftResult:
        """Compare a window given in chunks: counts add up chunk by chunk, so memory stays
        bounded by one chunk plus the profiles."""
        reference = self._fitted()
        window: ReferenceProfile | None = None
        for chunk in chunks:
            part = profile_window(reference, chunk)
            window = part if window is None else merge(window, part)
        if window is None:
            raise InvalidInput("chunks yielded no data frames", field="chunks")
        return self._compare(reference, window)

    # --- internals ---------------------------------------------------------------------------

    def _fitted(self) -> ReferenceProfile:
        profile: ReferenceProfile | None = getattr(self, "profile_", None)
        if profile is None:
            raise InvalidInput("the detector is not fitted: call fit(reference) first",
                               field="reference")
        return profile

    def _check_options(self, profile: ReferenceProfile) -> None:
        kinds = {c.name: c.kind for c in profile.columns}
        known = ", ".join(map(repr, kinds)) or "(none)"
        for field, mapping in (("methods", self.methods), ("thresholds", self.thresholds)):
            unknown = [name for name in mapping if name not in kinds]
            if unknown:
                raise InvalidInput(
                    f"{field} names columns not in the reference: "
                    f"{', '.join(map(repr, unknown))}; columns: {known}",
                    field=field,
                )
        for name, method in self.methods.items():
            if method not in METHODS:
                raise InvalidInput(
                    f"unknown drift method {method!r} for column {name!r}; known: "
                    f"{', '.join(METHODS)}",
                    field="methods",
                )
            if kinds[name] not in METHODS[method].kinds:
                allowed = [m for m, spec in METHODS.items() if kinds[name] in spec.kinds]
                raise InvalidInput(
                    f"method {method!r} does not apply to {kinds[name]} column {name!r}; use one"
                    f" of {', '.join(allowed)}",
                    field="methods",
                )
        for name, threshold in self.thresholds.items():
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
                math.isfinite(threshold) and threshold > 0
            ):
                raise InvalidInput(
                    f"threshold for column {name!r} must be a positive number, got {threshold!r}",
                    field="thresholds",
                )
        if not 0.0 < self.drift_share <= 1.0:
            raise InvalidInput(
                f"drift_share must be in (0, 1], got {self.drift_share!r}", field="drift_share"
            )
        if isinstance(self.coarse_bins, bool) or not isinstance(self.coarse_bins, int) or (
            self.coarse_bins < 1
        ):
            raise InvalidInput(
                f"coarse_bins must be an integer >= 1, got {self.coarse_bins!r}",
                field="coarse_bins",
            )

    def _compare(self, reference: ReferenceProfile, window: ReferenceProfile) -> DriftResult:
        if window.rows == 0:
            raise InvalidInput("current data has no rows", field="current")
        present = {c.name: c for c in window.columns}
        if not any(name in present for name in reference.names):
            raise InvalidInput(
                "current data has none of the reference columns "
                f"({', '.join(map(repr, reference.names))})",
                field="current",
            )
        verdicts = [self._column(ref, present.get(ref.name)) for ref in reference.columns]
        scored = [v for v in verdicts if v.status == "scored"]
        drifted = sum(v.drifted for v in scored)
        share = drifted / len(scored) if scored else 0.0
        return DriftResult(
            columns=verdicts,
            scored_columns=len(scored),
            drifted_columns=drifted,
            share=share,
            drift_share=self.drift_share,
            dataset_drift=bool(scored) and share >= self.drift_share,
            missing_columns=[v.column for v in verdicts if v.status == "missing"],
            reference_rows=reference.rows,
            current_rows=window.rows,
        )

    def _column(self, ref: ColumnProfile, cur: ColumnProfile | None) -> ColumnDrift:
        if cur is None:
            return ColumnDrift(
                column=ref.name, kind=ref.kind, reference_count=ref.count, status="missing",
                reason="the column is not in the current data",
            )
        _check_aligned(ref, cur)
        if ref.count == 0 or cur.count == 0:
            side = "reference" if ref.count == 0 else "current data"
            return ColumnDrift(
                column=ref.name, kind=ref.kind, reference_count=ref.count, status="empty",
                current_count=cur.count, reason=f"the column has no values in the {side}",
            )
        if ref.name in self.methods:
            method = self.methods[ref.name]
            reason = f"configured: {method}"
        else:
            method, reason = default_method(ref, cur)
        spec = METHODS[method]
        threshold = float(self.thresholds.get(ref.name, spec.threshold))
        measure = compute(method, ref, cur, coarse_bins=self.coarse_bins)
        score = measure.p_value if spec.test and measure.p_value is not None else measure.value
        return ColumnDrift(
            column=ref.name,
            kind=ref.kind,
            reference_count=ref.count,
            status="scored",
            method=method,
            statistic=spec.statistic,
            value=measure.value,
            p_value=measure.p_value,
            score=score,
            threshold=threshold,
            drifted=spec.drifted(score, threshold),
            bound=measure.bound,
            current_count=cur.count,
            reason=f"{reason}; {measure.note}",
        )


def _check_aligned(ref: ColumnProfile, cur: ColumnProfile) -> None:
    """A window profile must be counted on this reference's edges or categories."""
    same = (
        ref.kind == cur.kind
        and (ref.numeric is None or (cur.numeric is not None
                                     and cur.numeric.edges == ref.numeric.edges))
        and (ref.categorical is None or (cur.categorical is not None
                                         and cur.categorical.categories
                                         == ref.categorical.categories))
    )
    if not same:
        raise InvalidInput(
            f"column {ref.name!r} of the current profile was not counted on this reference;"
            " count windows with profile_window(detector.profile_, frame)",
            field="current",
        )
