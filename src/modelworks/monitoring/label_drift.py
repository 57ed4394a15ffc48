"""Label (target) drift: the true classes of a window's feedback against the reference's.

The reference side is the version's latest validation report — its confusion matrix's rows
are the validation data's true classes — so no label has to be profiled at registration;
the window side is the row sums of the performance accumulator's confusion matrix (labelled
rows only). The comparison is the drift detector's own, on one categorical column, so the
method follows Evidently 0.7's defaults like every other column (chi-square or a z-test up
to 1,000 reference labels, the Jensen-Shannon distance above). Regression labels are not
compared: their reference distribution is not stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .drift.detectors import ColumnDrift, DriftDetector
from .drift.profile import CategoryCounts, ColumnProfile, ReferenceProfile
from .performance import PerformanceResult

if TYPE_CHECKING:
    from ..governance.validation import ValidationReport

__all__ = ["LABEL", "label_drift", "reference_label_counts"]

LABEL = "label"
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
