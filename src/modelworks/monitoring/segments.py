"""Segments: drift, quality and performance per value of a column (region, a sensitive
attribute), so a shift or a fairness gap in one group is not averaged away.

The segment column may be a model input, an input the model ignores but the log kept, or a
column of ``data=``. Values are compared as text (``1.0`` and ``1`` are one value); a
missing value is the segment ``(missing)``. The ``top`` (20) values with the most rows are
reported one by one, the rest together as ``(other)``. A window is read once, so each value
gets its own sums as it is first seen, up to ``tracked`` (10 x top) values; values first
seen after that go straight to ``(other)`` — exact for any column with fewer distinct
values, which a segment column should be.

Per segment: the drift verdicts and PSI (from the reference cells: segments keep counts,
not raw values), the quality checks, the performance (real and estimated), and for
classifiers the **positive rate** — the share of rows predicted as the positive class, by
default the second of the model's two classes (``classes_[1]``, the column
``predict_proba[:, 1]`` scores: ``1`` for 0/1 labels), or the monitor's ``positive_label`` —
and, with labels, the **error rate** (share of labelled rows predicted wrong). Their trend
across runs (``segment.region=north.positive_rate``) is how bias drift shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from .drift.detectors import DriftDetector, DriftResult
from .performance import PerformanceResult
from .quality import Conformed, QualityResult
from .window import WindowStats, drift_metrics

__all__ = ["MISSING", "OTHER", "SegmentResult", "SegmentTracker", "segment_labels"]

MISSING, OTHER = "(missing)", "(other)"


class SegmentResult(BaseModel):
    """One value of a segment column: its rows' drift, quality and performance."""

    model_config = ConfigDict(frozen=True)

    column: str
    value: str
    rows: int
    drift: DriftResult
    psi: dict[str, float] = {}
    quality: QualityResult
    performance: PerformanceResult | None = None
    positive_rate: float | None = None
    error_rate: float | None = None
    labelled_rows: int = 0

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.drift.columns if c.drifted]

    def metrics(self) -> dict[str, float]:
        """The run's flat keys for this segment, under ``segment.<column>=<value>.``."""
        inner: dict[str, float] = {"rows": float(self.rows)}
        inner.update(drift_metrics(self.drift, self.psi))
        inner.update(self.quality.metrics())
        if self.performance is not None:
            inner.update(self.performance.flat())
        if self.positive_rate is not None:
            inner["positive_rate"] = self.positive_rate
        if self.error_rate is not None:
            inner["error_rate"] = self.error_rate
        prefix = f"segment.{self.column}={self.value}."
        return {prefix + key: value for key, value in inner.items()}


def segment_labels(series: pd.Series) -> np.ndarray:
    """Each value as text, integral numbers without ``.0``; missing ones ``(missing)``."""
    missing = series.isna().to_numpy()
    dtype = series.dtype
    if pd.api.types.is_float_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
        text = np.where(integral, np.where(integral, values, 0).astype(np.int64).astype(str),
                        values.astype(str)).astype(object)
    elif pd.api.types.is_object_dtype(dtype):
        text = np.array([_text(v) for v in series.to_numpy(dtype=object)], dtype=object)
    else:
        text = series.astype(str).to_numpy(dtype=object)
    text[missing] = MISSING
    return text


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


class SegmentTracker:
    """Splits each chunk by one column's values and keeps a ``WindowStats`` per value."""

    def __init__(self, column: str, make: Callable[[], WindowStats], *, top: int = 20,
                 tracked: int | None = None) -> None:
        self.column = column
        self.top = top
        self.tracked = tracked if tracked is not None else 10 * top
        self._make = make
        self.stats: dict[str, WindowStats] = {}
        self.overflow: WindowStats | None = None
        self.seen = False  # whether any chunk had the column

    def add(self, chunk: Conformed) -> None:
        n = len(chunk.frame)
        if not n:
            return
        if self.column in chunk.frame.columns:
            self.seen = True
            labels = segment_labels(chunk.frame[self.column])
        else:
            labels = np.full(n, MISSING, dtype=object)
        codes, uniques = pd.factorize(labels)
        for i, value in enumerate(uniques):
            part = chunk if len(uniques) == 1 else chunk.take(codes == i)
            stats = self.stats.get(value)
            if stats is None:
                if len(self.stats) < self.tracked:
                    stats = self.stats[value] = self._make()
                else:
                    if self.overflow is None:
                        self.overflow = self._make()
                    stats = self.overflow
            stats.add(part)

    def results(self, detector: DriftDetector, *, missing_jump: float,
                required: Iterable[str]) -> list[SegmentResult]:
        """The ``top`` values by rows (ties by name), then ``(other)`` if any rows are left."""
        ranked = sorted(self.stats.items(), key=lambda item: (-item[1].rows, item[0]))
        shown = ranked[:self.top]
        rest = self.overflow
        for _, stats in ranked[self.top:]:
            rest = stats if rest is None else rest.merge(stats)
        groups = [*shown, *([(OTHER, rest)] if rest is not None and rest.rows else [])]
        required = list(required)
        return [self._result(value, stats, detector, missing_jump, required)
                for value, stats in groups]

    def _result(self, value: str, stats: WindowStats, detector: DriftDetector,
                missing_jump: float, required: list[str]) -> SegmentResult:
        summary = stats.summary(detector, missing_jump=missing_jump, required=required)
        perf = summary.performance
        error_rate = None
        labelled = perf.labelled_rows if perf is not None else 0
        if perf is not None and perf.task == "classification" and "accuracy" in perf.metrics:
            error_rate = 1.0 - perf.metrics["accuracy"]
        return SegmentResult(
            column=self.column, value=value, rows=stats.rows, drift=summary.drift,
            psi=summary.psi, quality=summary.quality, performance=perf,
            positive_rate=perf.positive_rate if perf is not None else None,
            error_rate=error_rate, labelled_rows=labelled)
