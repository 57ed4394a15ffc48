"""One pass over a window: everything a monitor run needs, accumulated chunk by chunk.

A chunk is conformed (``quality.conform``), counted on the reference's cells
(``drift.profile_window``, merged), counted by the quality counter and added to the
performance accumulator — so memory holds one chunk plus these sums, whatever the window's
size, and two parts of a window merge into the whole (``WindowStats.merge``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import InvalidInput
from .drift.detectors import DriftDetector, DriftResult
from .drift.methods import compute
from .drift.profile import ColumnProfile, ReferenceProfile, merge, profile_window
from .performance import PerformanceAccumulator, PerformanceResult
from .quality import Conformed, QualityCounter, QualityResult, quality_result
from .references import PREDICTION

__all__ = ["Summary", "WindowStats", "drift_metrics", "psi_by_column"]


class WindowStats:
    """The sums of one window (or one segment of it).

    Args:
        reference: the reference profile chunks are counted on.
        performance: makes an empty performance accumulator (None: no performance).
        keep_values: keep small windows' raw values for exact small-sample tests; segments
            do not, so a hundred segments stay a hundred sets of counts.
    """

    def __init__(self, reference: ReferenceProfile, *,
                 performance: Callable[[], PerformanceAccumulator] | None = None,
                 keep_values: bool = True) -> None:
        self.reference = reference
        self.keep_values = keep_values
        self.counter = QualityCounter()
        self.profile: ReferenceProfile | None = None
        self._make = performance
        self.performance = performance() if performance is not None else None
        self.predicted = 0

    @property
    def rows(self) -> int:
        return self.counter.rows

    def add(self, chunk: Conformed) -> None:
        if not len(chunk.frame):
            return
        self.counter.add(chunk)
        part = profile_window(self.reference, chunk.frame)
        if not self.keep_values:
            part = _without_values(part)
        self.profile = part if self.profile is None else merge(self.profile, part)
        if self.performance is not None and PREDICTION in chunk.present:
            self.performance.add(chunk.frame)
            self.predicted += len(chunk.frame)

    def merge(self, other: WindowStats) -> WindowStats:
        """This window and ``other`` (of the same reference) as one."""
        out = WindowStats(self.reference, performance=self._make, keep_values=self.keep_values)
        out.counter = self.counter.merge(other.counter)
        if self.profile is None or other.profile is None:
            out.profile = self.profile or other.profile
        else:
            out.profile = merge(self.profile, other.profile)
        if out.performance is not None:
            for part in (self.performance, other.performance):
                if part is not None:
                    out.performance.merge(part)
        out.predicted = self.predicted + other.predicted
        return out

    def window_profile(self) -> ReferenceProfile:
        """The merged profile of the columns the window had (one never seen is absent, so
        the detector reports it missing)."""
        if self.profile is None:
            return ReferenceProfile(role="window", rows=0, columns=[])
        present = self.counter.present
        return self.profile.model_copy(update={
            "columns": [c for c in self.profile.columns if c.name in present]})

    def summary(self, detector: DriftDetector, *, missing_jump: float,
                required: Iterable[str]) -> Summary:
        """Drift, PSI, quality and performance of the window."""
        window = self.window_profile()
        drift = detector.score(window)
        quality = quality_result(self.reference, window, self.counter,
                                 missing_jump=missing_jump, required=required)
        performance = None
        if self.performance is not None and self.predicted:
            performance = self.performance.result()
        return Summary(window=window, drift=drift,
                       psi=psi_by_column(self.reference, window, detector.coarse_bins),
                       quality=quality, performance=performance)


@dataclass(frozen=True)
class Summary:
    window: ReferenceProfile
    drift: DriftResult
    psi: dict[str, float]
    quality: QualityResult
    performance: PerformanceResult | None


def _without_values(profile: ReferenceProfile) -> ReferenceProfile:
    columns: list[ColumnProfile] = []
    for column in profile.columns:
        if column.numeric is not None and column.numeric.values is not None:
            column = column.model_copy(update={
                "numeric": column.numeric.model_copy(update={"values": None})})
        columns.append(column)
    return profile.model_copy(update={"columns": columns})


def psi_by_column(reference: ReferenceProfile, window: ReferenceProfile,
                  coarse_bins: int) -> dict[str, float]:
    """PSI of every column with values on both sides, from the reference bins (whatever
    method decided drift): categories, values of a discrete column, or about
    ``coarse_bins`` reference-quantile bins."""
    present = {c.name: c for c in window.columns}
    out: dict[str, float] = {}
    for ref in reference.columns:
        cur = present.get(ref.name)
        if cur is None or not ref.count or not cur.count:
            continue
        try:
            out[ref.name] = compute("psi", ref, cur, coarse_bins=coarse_bins).value
        except InvalidInput:  # nothing to bin (no reference mass): no PSI
            continue
    return out


def drift_metrics(drift: DriftResult, psi: dict[str, float]) -> dict[str, float]:
    """Flat drift keys: ``drift.share``, ``drift.dataset_drift``, ``drift.drifted_columns``,
    and per scored column ``drift.column.<col>.score|value|psi|drifted``."""
    out = {"drift.share": drift.share, "drift.dataset_drift": float(drift.dataset_drift),
           "drift.drifted_columns": float(drift.drifted_columns)}
    for column in drift.columns:
        key = f"drift.column.{column.column}"
        if column.score is not None:
            out[f"{key}.score"] = column.score
        if column.value is not None:
            out[f"{key}.value"] = column.value
        if column.column in psi:
            out[f"{key}.psi"] = psi[column.column]
        if column.status == "scored":
            out[f"{key}.drifted"] = float(column.drifted)
    return out
