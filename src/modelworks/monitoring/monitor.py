"""Monitor a model version: its served predictions (or given data) against its reference.

    monitor = ws.monitor("models:/claims-triage@production", reference="training")
    result = monitor.run(window="1d")            # or since=..., until=..., or data=df
    result.drift.dataset_drift, result.drift.column("claim_amount").drifted

A run over the prediction log reads the window's predictions by the version the URI names
now (an alias is resolved at run time) and compares their logged inputs and outputs (as the
``prediction`` column) with the version's reference profile: drift per column, data quality
(``quality``), performance against feedback labels and its estimate (``performance``), the
same per segment value (``segments``). The window is streamed chunk by chunk
(``serving.prediction_reader.iter_prediction_frames``) into mergeable sums
(``window.WindowStats``), so memory does not grow with the window. Each run is stored — one
queryable row (``mw_monitor_runs``: window, rows, drift share, the drifted columns) and the
full result as JSON in the artifact store — and audited; ``MonitorResult.metrics()`` gives
the flat numbers alert rules test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput, NotFound
from ..governance.validation import latest_validation
from ..registry.loading import LoadedModel, load
from ..registry.models import resolve, version_id
from ..registry.uri import parse_model_uri
from ..serving.prediction_reader import ValueType, as_utc, iter_prediction_frames
from ..store.tables import monitor_runs, utcnow
from .alerts import Alert, deliver_alerts, list_alerts, raise_alerts
from .drift.detectors import ColumnDrift, DriftDetector, DriftResult
from .drift.profile import ColumnProfile, ReferenceProfile
from .label_drift import LabelWindow, label_drift, reference_label_counts
from .performance import PerformanceAccumulator, PerformanceResult, accumulator_for
from .quality import QualityResult, conform
from .references import (
    LABELS_SUFFIX,
    PREDICTION,
    ReferenceRecord,
    current_frame,
    get_reference,
    model_failed,
    reference_for,
)
from .segments import SegmentResult, SegmentTracker
from .window import Summary, WindowStats, drift_metrics

__all__ = ["SPAN", "Monitor", "MonitorResult", "list_monitor_runs", "parse_window"]

SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(window: str) -> timedelta:
    match = SPAN.match(window.strip()) if isinstance(window, str) else None
    if match is None:
        raise InvalidInput(f"window must look like 30m, 12h, 1d or 2w, got {window!r}",
                           field="window")
    span = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if span <= timedelta(0):
        raise InvalidInput("window must be positive", field="window")
    return span


class MonitorResult(BaseModel):
    """One monitor run."""

    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    version: int
    reference: str
    source: str  # prediction-log | data
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    drift: DriftResult
    # PSI of each column from the reference bins, whatever method decided its drift.
    psi: dict[str, float] = {}
    quality: QualityResult | None = None
    performance: PerformanceResult | None = None
    # True classes of the window's feedback against the validation data's (classifiers).
    label_drift: ColumnDrift | None = None
    segments: list[SegmentResult] = []
    # The window's counts on the reference's cells: what the report plots against it.
    window_profile: ReferenceProfile | None = None
    # What the model's monitoring plan raised on this run (stored in mw_alerts, not in the
    # run's JSON, which is written before the transaction that raises them).
    alerts: list[Alert] = []
    result_sha256: str
    created_at: datetime
    created_by: str

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.drift.columns if c.drifted]

    def metrics(self) -> dict[str, float]:
        """The run as flat numbers, the keys alert rules name: ``rows``, ``drift.*``
        (``drift.column.<col>.score|value|psi|drifted``), ``quality.*``,
        ``performance.*`` and ``segment.<col>=<value>.<any of these>``."""
        out: dict[str, float] = {"rows": float(self.rows)}
        out.update(drift_metrics(self.drift, self.psi))
        if self.quality is not None:
            out.update(self.quality.metrics())
        if self.performance is not None:
            out.update(self.performance.flat())
        if self.label_drift is not None and self.label_drift.status == "scored":
            d = self.label_drift
            out["drift.label.drifted"] = float(d.drifted)
            for key, value in (("value", d.value), ("score", d.score)):
                if value is not None:
                    out[f"drift.label.{key}"] = float(value)
        for segment in self.segments:
            out.update(segment.metrics())
        return out


class Monitor:
    """Drift, data quality and performance of one model URI against one of its reference
    profiles, over the prediction log or given data, optionally per segment.

    Args:
        segments: columns to split each window by (inputs, logged inputs the model
            ignores, or columns of ``data=``); see ``segments.py``.
        segment_top: values per segment column reported one by one (the rest: ``(other)``).
        missing_jump: rise of a column's missing rate over the reference's that is flagged
            (when also significant); see ``quality.py``.
        positive_label: the class positive rates, precision and recall are about (default:
            the second of two classes, ``classes_[1]``).
        chunk_rows: rows read from the prediction log at a time (memory, not results).
    """

    def __init__(self, ctx: Context, uri: str, *, reference: Any = "training",
                 journal_dir: str | Path | None = None,
                 thresholds: dict[str, float] | None = None,
                 methods: dict[str, str] | None = None, drift_share: float = 0.5,
                 segments: list[str] | str | None = None, segment_top: int = 20,
                 missing_jump: float = 0.05, positive_label: Any = None,
                 chunk_rows: int = 65_536) -> None:
        self.ctx = ctx
        self.uri = str(parse_model_uri(uri))
        self.reference = reference
        self.journal_dir = journal_dir
        self.thresholds = dict(thresholds or {})
        self.methods = dict(methods or {})
        self.drift_share = drift_share
        self.segments = _segment_columns(segments)
        if isinstance(segment_top, bool) or not isinstance(segment_top, int) or segment_top < 1:
            raise InvalidInput(f"segment_top must be a positive integer, got {segment_top!r}",
                               field="segment_top")
        self.segment_top = segment_top
        if isinstance(missing_jump, bool) or not isinstance(missing_jump, int | float) or not (
                0.0 <= missing_jump <= 1.0):
            raise InvalidInput(f"missing_jump must be a number between 0 and 1, got "
                               f"{missing_jump!r}", field="missing_jump")
        self.missing_jump = float(missing_jump)
        self.positive_label = positive_label
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise InvalidInput(f"chunk_rows must be a positive integer, got {chunk_rows!r}",
                               field="chunk_rows")
        self.chunk_rows = chunk_rows
        with ctx.db.read() as conn:
            resolve(conn, parse_model_uri(self.uri))  # NotFound now, not at the first run

    def run(self, *, data: pd.DataFrame | None = None, since: datetime | str | None = None,
            until: datetime | str | None = None, window: str | None = None,
            label: str | None = None) -> MonitorResult:
        """Compare ``data``, or the prediction log's window, with the reference; stored.

        ``label`` names the column of ``data`` holding true labels (the log's labels are
        its feedback). A window without predictions is an InvalidInput naming ``window``.
        """
        if data is not None and (since or until or window):
            raise InvalidInput("give data, or a window of the prediction log, not both",
                               field="data")
        if window is not None and (since or until):
            raise InvalidInput("give window, or since/until, not both", field="window")
        if label is not None and data is None:
            raise InvalidInput("label names a column of data; the prediction log's labels "
                               "are its feedback", field="label")
        loaded = load(self.ctx, self.uri)
        name, number = loaded.version.name, loaded.version.version
        record, profile = reference_for(self.ctx, loaded.version.uri, self.reference)
        detector = DriftDetector(thresholds=self.thresholds, methods=self.methods,
                                 drift_share=self.drift_share).fit(profile)
        with self.ctx.db.read() as conn:  # one read: the baseline and the reference labels
            report = latest_validation(conn, version_id(conn, name, number))
        template = accumulator_for(self.ctx, loaded, positive_label=self.positive_label,
                                   report=report)
        start = end = None
        if data is not None:
            chunks: Iterable[pd.DataFrame] = [
                self._given(loaded, profile, data, label, template.task == "classification")]
            source = "data"
        else:
            end = as_utc(until, "until") or datetime.now(UTC)
            start = end - parse_window(window) if window else as_utc(since, "since")
            if start is not None and start >= end:
                raise InvalidInput("since must be before until", field="since")
            columns: dict[str, ValueType | None] = {
                c.name: _value_type(c) for c in profile.columns if c.name != PREDICTION}
            for column in self.segments:
                columns.setdefault(column, None)
            chunks = iter_prediction_frames(
                self.ctx, model=name, version=number, since=start, until=end,
                journal_dir=self.journal_dir, chunk_rows=self.chunk_rows, with_feedback=True,
                columns=columns)
            source = "prediction-log"

        def performance() -> PerformanceAccumulator:
            return PerformanceAccumulator(template.task, template.classes,
                                          positive_label=template.positive_label,
                                          baseline=template.baseline)

        stats = WindowStats(profile, performance=performance)
        trackers = [self._tracker(column, profile, performance) for column in self.segments]
        label_window = (self._label_window(loaded.version.uri)
                        if template.task == "regression" else None)
        for chunk in chunks:
            conformed = conform(profile, chunk)
            stats.add(conformed)
            if label_window is not None:
                label_window.add(conformed.frame)
            for tracker, _, _ in trackers:
                tracker.add(conformed)
        if not stats.rows:
            span = f"between {start.isoformat() if start else 'the start'} and " \
                f"{end.isoformat() if end else 'now'}"
            raise InvalidInput(f"no predictions by {name}/{number} {span}: nothing to "
                               "monitor in this window", field="window")
        for tracker, _, _ in trackers:
            if not tracker.seen:
                raise InvalidInput(
                    f"segment column {tracker.column!r} is not in the window's logged inputs "
                    "(columns a log filter drops as personal are not logged either)",
                    field="segments")
        required = [c.name for c in profile.columns if c.name != PREDICTION]
        summary = stats.summary(detector, missing_jump=self.missing_jump, required=required)
        segments = [result for tracker, own_detector, own_required in trackers
                    for result in tracker.results(own_detector, missing_jump=self.missing_jump,
                                                  required=own_required)]
        labels = (label_window.drift() if label_window is not None
                  else label_drift(reference_label_counts(report), summary.performance))
        return self._store(name, number, record, source, start, end, stats.rows, summary,
                           segments, labels)

    def _label_window(self, uri: str) -> LabelWindow | None:
        """A regression's labels are compared with its validation data's, when profiled."""
        try:
            _, reference = get_reference(self.ctx, uri, f"validation{LABELS_SUFFIX}")
        except NotFound:
            return None
        return LabelWindow(reference)

    def _given(self, loaded: LoadedModel, profile: ReferenceProfile, data: pd.DataFrame,
               label: str | None, classifier: bool) -> pd.DataFrame:
        """``data`` as the log would hold it: inputs, prediction, probabilities, label and
        segment columns."""
        if not isinstance(data, pd.DataFrame):
            raise InvalidInput("data must be a pandas DataFrame", field="data")
        if data.empty:
            raise InvalidInput("data has no rows", field="data")
        names = [str(c) for c in data.columns]
        absent = [c for c in self.segments if c not in names]
        if absent:
            raise InvalidInput(f"segment column(s) {', '.join(map(repr, absent))} not in the "
                               f"data (columns: {', '.join(names[:20])})", field="segments")
        if label is not None and label not in names:
            raise InvalidInput(f"label column {label!r} is not in the data", field="label")
        frame = current_frame(loaded, data, with_prediction=False)
        if len(frame.columns) == len(loaded.signature.inputs if loaded.signature else []):
            # predicted as the monitor reads them: a wrong-typed value is a missing one
            inputs = conform(profile, frame).frame[list(frame.columns)]
            frame = frame.assign(**_predictions(loaded, inputs, classifier))
        extra = {c: data[c].to_numpy() for c in self.segments if c not in frame.columns}
        if label is not None:
            extra["label"] = data[label].to_numpy(dtype=object)
        return frame.assign(**extra) if extra else frame

    def _tracker(self, column: str, profile: ReferenceProfile,
                 performance: Callable[[], PerformanceAccumulator]
                 ) -> tuple[SegmentTracker, DriftDetector, list[str]]:
        """A segment column's tracker, with a reference and detector without that column
        (constant within each segment, it would drift trivially)."""
        own = profile.model_copy(update={
            "columns": [c for c in profile.columns if c.name != column]})
        detector = DriftDetector(
            thresholds={k: v for k, v in self.thresholds.items() if k != column},
            methods={k: v for k, v in self.methods.items() if k != column},
            drift_share=self.drift_share).fit(own)

        def make() -> WindowStats:
            return WindowStats(own, performance=performance, keep_values=False)

        required = [c.name for c in own.columns if c.name != PREDICTION]
        return SegmentTracker(column, make, top=self.segment_top), detector, required

    def _store(self, name: str, version: int, reference: ReferenceRecord, source: str,
               start: datetime | None, end: datetime | None, rows: int, summary: Summary,
               segments: list[SegmentResult], labels: ColumnDrift | None = None
               ) -> MonitorResult:
        run_id, now = uuid.uuid4().hex, utcnow()
        drift, quality = summary.drift, summary.quality
        draft = MonitorResult(id=run_id, model=name, version=version,
                              reference=reference.source, source=source, window_start=start,
                              window_end=end, rows=rows, drift=drift, psi=summary.psi,
                              quality=quality, performance=summary.performance,
                              label_drift=labels, segments=segments, window_profile=summary.window,
                              result_sha256="", created_at=now, created_by=self.ctx.actor)
        ref = self.ctx.artifacts.put_bytes(draft.model_dump_json().encode("utf-8"))
        result = draft.model_copy(update={"result_sha256": ref.sha256})
        drifted = result.drifted_columns
        with self.ctx.db.write() as conn:
            vid = version_id(conn, name, version)
            conn.execute(insert(monitor_runs).values(
                id=run_id, model_version_id=vid,
                reference_id=reference.id, window_start=start, window_end=end, source=source,
                rows=rows, drift_share=drift.share, dataset_drift=drift.dataset_drift,
                summary={"drifted_columns": drifted, "scored_columns": drift.scored_columns,
                         "missing_columns": drift.missing_columns,
                         "reference": reference.source,
                         "quality_error_rate": quality.error_rate,
                         "labelled_rows": (summary.performance.labelled_rows
                                           if summary.performance is not None else 0),
                         "segments": len(segments)},
                result_sha256=ref.sha256, created_at=now, created_by=self.ctx.actor))
            audit.append(self.ctx.db, conn, actor=self.ctx.actor,
                         action="model_version.monitored", entity_type="model_version",
                         entity_id=f"{name}/{version}", payload={
                             "run": run_id, "source": source, "rows": rows,
                             "reference": reference.source, "drift_share": drift.share,
                             "dataset_drift": drift.dataset_drift,
                             "drifted_columns": drifted[:50],
                             "quality_error_rate": quality.error_rate})
            raised = raise_alerts(self.ctx, conn, result, vid)
        if raised:  # after commit: sinks never see an alert that was rolled back
            result = result.model_copy(update={"alerts": raised})
            deliver_alerts(self.ctx, raised)
        return result


def list_monitor_runs(ctx: Context, uri: str, *, limit: int = 100) -> list[MonitorResult]:
    """Stored runs of the version ``uri`` names, newest first."""
    with ctx.db.read() as conn:
        version = resolve(conn, parse_model_uri(uri))
        vid = version_id(conn, version.name, version.version)
        rows = conn.execute(select(monitor_runs.c.id, monitor_runs.c.result_sha256).where(
            monitor_runs.c.model_version_id == vid).order_by(
            monitor_runs.c.created_at.desc()).limit(limit)).all()
        raised = {row.id: list_alerts(conn, monitor_run=row.id, limit=None) for row in rows}
    # The JSON is written before its own hash and the run's alerts exist: both come from
    # the tables.
    return [MonitorResult.model_validate_json(ctx.artifacts.get_bytes(row.result_sha256))
            .model_copy(update={"result_sha256": row.result_sha256,
                                "alerts": list(reversed(raised[row.id]))})
            for row in rows]


def _segment_columns(segments: list[str] | str | None) -> list[str]:
    if segments is None:
        return []
    if isinstance(segments, str):
        segments = [segments]
    if not isinstance(segments, list | tuple) or not all(
            isinstance(c, str) and c for c in segments):
        raise InvalidInput("segments must be a list of column names", field="segments")
    if PREDICTION in segments:
        raise InvalidInput(f"segments names {PREDICTION!r}: segment by an input column",
                           field="segments")
    return list(dict.fromkeys(segments))


def _value_type(column: ColumnProfile) -> ValueType:
    """How a logged input of this reference column decodes (numbers as floats)."""
    if column.kind == "numeric":
        return "number"
    return "bool" if column.dtype in ("bool", "boolean") else "string"


def _predictions(loaded: LoadedModel, inputs: pd.DataFrame, classifier: bool
                 ) -> dict[str, Any]:
    """The model's predictions (and class probabilities) on ``inputs``, as served: rows the
    signature refuses (a missing value in a non-nullable column, a wrong type) get none —
    the server would have refused them too — and the others are still predicted."""
    import numpy as np

    with_proba = classifier and hasattr(loaded.model, "predict_proba")
    rows = np.ones(len(inputs), dtype=bool)
    try:
        predicted = loaded.predict(inputs)
    except InvalidInput:
        rows = inputs.notna().all(axis=1).to_numpy()
        if not rows.any():
            return {}
        try:
            predicted = loaded.predict(inputs[rows])
        except InvalidInput:
            return {}
        except Exception as exc:  # the model's own failure (e.g. an unknown category)
            raise model_failed(loaded, exc) from exc
    except Exception as exc:
        raise model_failed(loaded, exc) from exc
    out: dict[str, Any] = {}
    prediction = np.full(len(inputs), None, dtype=object)
    prediction[rows] = list(np.asarray(predicted).ravel())
    out[PREDICTION] = prediction if not rows.all() else np.asarray(predicted).ravel()
    if with_proba:
        proba = np.full(len(inputs), None, dtype=object)
        proba[np.flatnonzero(rows)] = list(loaded.predict_proba(inputs[rows] if not rows.all()
                                                                 else inputs))
        out["proba"] = proba
    return out
