"""Label (target) drift: the true labels of a window's feedback against the reference's.

Classifiers: the reference side is the version's latest validation report — its confusion
matrix's rows are the validation data's true classes — and the window side the row sums of
the performance accumulator's confusion matrix (labelled rows only). Regressions: the
reference is the ``validation-labels`` profile stored when the version was validated (the
label column's quantile cells), and ``LabelWindow`` counts the window's labelled rows on
them chunk by chunk. Either way the comparison is the drift detector's own, on one column,
so the method follows Evidently 0.7's defaults like every other column (for classes
chi-square or a z-test up to 1,000 reference labels, the Jensen-Shannon distance above; for
numbers the K-S test up to 1,000, the Wasserstein distance above).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .drift.detectors import ColumnDrift, DriftDetector
from .drift.profile import CategoryCounts, ColumnProfile, ReferenceProfile, merge, profile_window
from .performance import PerformanceResult
from .references import LABEL

if TYPE_CHECKING:
    from ..governance.validation import ValidationReport

__all__ = ["LabelWindow", "label_drift", "reference_label_counts"]
_LIMIT = 1_000


def reference_label_counts(report: ValidationReport | None) -> dict[str, int] | None:
    """True-class counts of a validation report's data (None: no report, or not a
    classifier)."""
    if report is None or report.classes is None or report.confusion_matrix is None:
        return None
    return {str(c): int(sum(row)) for c, row in zip(report.classes, report.confusion_matrix,
                                                    strict=True)}


def _profile(counts: dict[str, int], categories: list[str], role: str) -> ReferenceProfile:
    unseen = {k: v for k, v in counts.items() if k not in categories}
    column = ColumnProfile(
        name=LABEL, kind="categorical", dtype="object", count=sum(counts.values()), missing=0,
        categorical=CategoryCounts(categories=categories,
                                   counts=[counts.get(c, 0) for c in categories],
                                   unseen=unseen, limit=_LIMIT))
    return ReferenceProfile(role=role, rows=column.count,  # type: ignore[arg-type]
                            columns=[column])


def label_drift(reference: dict[str, int] | None, performance: PerformanceResult | None, *,
                threshold: float | None = None) -> ColumnDrift | None:
    """The window's labels against the reference's (None when either side has none)."""
    if (not reference or performance is None or performance.classes is None
            or performance.confusion_matrix is None or not performance.labelled_rows):
        return None
    window = {str(c): int(sum(row)) for c, row in zip(performance.classes,
                                                      performance.confusion_matrix,
                                                      strict=True)}
    if not sum(window.values()):
        return None
    categories = sorted(reference)
    detector = DriftDetector(thresholds={LABEL: threshold} if threshold else None).fit(
        _profile(reference, categories, "reference"))
    return detector.score(_profile(window, categories, "window")).columns[0]


class LabelWindow:
    """A window's numeric labels counted on the reference's cells, chunk by chunk (rows
    without a label, or with one that is not a number, are left out)."""

    def __init__(self, reference: ReferenceProfile) -> None:
        self.reference = reference
        self.profile: ReferenceProfile | None = None

    def add(self, frame: pd.DataFrame) -> None:
        if LABEL not in frame.columns:
            return
        values = pd.to_numeric(frame[LABEL], errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            return
        part = profile_window(self.reference, pd.DataFrame({LABEL: values}))
        self.profile = part if self.profile is None else merge(self.profile, part)

    def drift(self, *, threshold: float | None = None) -> ColumnDrift | None:
        """The window's labels against the reference's (None: no labelled row yet)."""
        if self.profile is None:
            return None
        detector = DriftDetector(thresholds={LABEL: threshold} if threshold else None)
        return detector.fit(self.reference).score(self.profile).columns[0]
