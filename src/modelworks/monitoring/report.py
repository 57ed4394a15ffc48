"""The monitoring report of a model version: one monitor run, its trend and its alerts.

    report = ws.monitor_report("models:/claims@production", out="drift.html")
    report.dataset_drift, report.columns[0].drift.column, report.trend[-1].share
    report.to_json()          # for machines; report.html() is the self-contained page

The report is assembled from stored records only — the run's JSON result (drift verdicts,
the window's counts on the reference cells, and quality / performance / segments when the
run has them), the reference profile it was compared with, the version's earlier runs
against the same reference (``mw_monitor_runs``) and the alerts (``mw_alerts``) — so it
costs the same for a window of a thousand rows or of ten million, and is never a state
change (nothing to audit).
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Row, select

from ..context import Context
from ..errors import InvalidInput, NotFound
from ..registry.models import resolve, version_id
from ..registry.uri import parse_model_uri
from ..store.tables import monitor_runs, reference_profiles
from .alerts import Alert, list_alerts, metrics_of
from .alerts.rules import segment_of
from .drift.detectors import ColumnDrift
from .drift.profile import DISCRETE_MAX, ColumnProfile, ReferenceProfile
from .monitor import MonitorResult
from .performance import PerformanceResult
from .quality import QualityResult
from .segments import SegmentResult

__all__ = ["ColumnReport", "Distribution", "MonitorReport", "TrendPoint", "build_report",
           "distribution_of"]

MAX_RUNS = 1_000
RECENT_ALERTS = 20
_PLOT_BINS = 30  # histogram bins drawn per numeric column (groups of reference cells)
_PLOT_BARS = 25  # categories drawn per categorical column; the rest in "(other)"
OTHER = "(other)"
_RUN_ID = re.compile(r"^[0-9a-f]{4,32}$")


class Distribution(BaseModel):
    """Reference vs current for one column, on the reference's own cells or categories.

    ``histogram``: ``edges`` (one more than the bins; bins may differ in width) and the
    density of each side per bin (area 1 over the drawn range); bins beyond the reference's
    range hold the current values below its minimum or above its maximum. ``bars``:
    ``labels`` (categories, or the values of a discrete numeric column) and the share of each
    side's non-missing values; ``new`` marks labels the reference never had.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["histogram", "bars"]
    edges: list[float] = []
    labels: list[str] = []
    new: list[bool] = []
    reference: list[float]
    current: list[float]
    current_below: float = 0.0  # share of current values below the reference minimum
    current_above: float = 0.0  # ... and above its maximum
    clipped: bool = False  # the out-of-range bins were cut at half the reference's range


class ColumnReport(BaseModel):
    """One column: its drift verdict, missing rates and what the page plots."""

    model_config = ConfigDict(frozen=True)

    drift: ColumnDrift
    reference_missing_rate: float | None = None
    current_missing_rate: float | None = None
    distribution: Distribution | None = None
    note: str | None = None  # why there is no plot

    @property
    def column(self) -> str:
        return self.drift.column


class TrendPoint(BaseModel):
    """One earlier (or this) run against the same reference, for the trend charts.

    ``scores`` holds each column's verdict score (the p-value of a test, the value of a
    distance: what meets the threshold); ``metrics`` the run's run-level ``quality.*`` and
    ``performance.*`` figures and per segment value its rows, positive and error rates,
    drift share and quality error rate (``segment.<col>=<value>.<figure>``), keyed as alert
    rules name them.
    """

    model_config = ConfigDict(frozen=True)

    run_id: str
    created_at: datetime
    window_start: datetime | None = None
    window_end: datetime | None = None
    rows: int
    share: float
    dataset_drift: bool
    scores: dict[str, float | None]
    drifted: dict[str, bool]
    metrics: dict[str, float] = {}


class MonitorReport(BaseModel):
    """The drift report of one monitor run: header, columns (drifted first), trend, alerts,
    and the run's own quality, performance and segment records (None / empty when the run
    has none)."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    run_id: str
    run_created_at: datetime
    run_created_by: str
    source: str
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    reference: str
    reference_rows: int
    reference_replaced: bool  # the reference was re-profiled after the run: no plots
    dataset_drift: bool
    share: float
    drift_share: float
    drifted_columns: int
    scored_columns: int
    missing_columns: list[str]
    columns: list[ColumnReport]
    trend: list[TrendPoint]
    alerts: list[Alert]  # raised by this run (firing or suppressed), newest first
    recent_alerts: list[Alert]  # the model's latest alerts, any version
    psi: dict[str, float] = {}  # per column, from the reference bins, whatever the method
    quality: QualityResult | None = None
    performance: PerformanceResult | None = None
    label_drift: ColumnDrift | None = None
    segments: list[SegmentResult] = []
    generated_at: datetime

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"

    def column(self, name: str) -> ColumnReport:
        """The report of column ``name``; an unknown name is an InvalidInput."""
        for c in self.columns:
            if c.column == name:
                return c
        raise InvalidInput(f"no column {name!r} in the report", field="column")

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def html(self) -> str:
        """The report as one self-contained HTML page (inline SVG, no scripts)."""
        from .report_page import render_report

        return render_report(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the HTML page (or, for a ``.json`` path, the JSON) to ``path``."""
        target = Path(path)
        if target.parent and not target.parent.is_dir():
            raise InvalidInput(f"cannot write {str(target)!r}: no folder {str(target.parent)!r}",
                               field="out")
        body = self.to_json() if target.suffix.lower() == ".json" else self.html()
        target.write_text(body, encoding="utf-8")
        return target


# --- assembly --------------------------------------------------------------------------------


def build_report(ctx: Context, uri: str, *, runs: int = 30, run_id: str | None = None
                 ) -> MonitorReport:
    """The report of the newest monitor run of the version ``uri`` names (or of ``run_id``),
    with the trend over its last ``runs`` runs against the same reference.

    Raises:
        NotFound: the model or version, the run, or any run at all is missing.
        InvalidInput: ``runs`` is not an integer in 1..1000, or ``run_id`` is ambiguous.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_RUNS:
        raise InvalidInput(f"runs must be an integer from 1 to {MAX_RUNS}, got {runs!r}",
                           field="runs")
    with ctx.db.read() as conn:
        version = resolve(conn, parse_model_uri(uri))
        vid = version_id(conn, version.name, version.version)
        row = _run_row(conn, vid, version.uri, run_id)
        history = conn.execute(select(monitor_runs).where(
            monitor_runs.c.model_version_id == vid,
            monitor_runs.c.reference_id == row.reference_id,
            monitor_runs.c.created_at <= row.created_at).order_by(
            monitor_runs.c.created_at.desc(), monitor_runs.c.id.desc()).limit(runs)).all()
        ref_row = conn.execute(select(reference_profiles).where(
            reference_profiles.c.id == row.reference_id)).one()
        this_run = list_alerts(conn, monitor_run=row.id, limit=None)
        recent = list_alerts(conn, model=version.name, limit=RECENT_ALERTS)
    result = _load_run(ctx, row.result_sha256)
    reference = ReferenceProfile.model_validate_json(ctx.artifacts.get_bytes(
        ref_row.profile_sha256))
    replaced = ref_row.created_at > row.created_at
    trend = [_point(result if h.id == row.id else _load_run(ctx, h.result_sha256))
             for h in reversed(history)]
    drift = result.drift
    return MonitorReport(
        model=version.name, version=version.version, run_id=result.id,
        run_created_at=result.created_at, run_created_by=result.created_by,
        source=result.source, window_start=result.window_start, window_end=result.window_end,
        rows=result.rows, reference=result.reference, reference_rows=drift.reference_rows,
        reference_replaced=replaced, dataset_drift=drift.dataset_drift, share=drift.share,
        drift_share=drift.drift_share, drifted_columns=drift.drifted_columns,
        scored_columns=drift.scored_columns, missing_columns=list(drift.missing_columns),
        columns=_columns(result, reference, replaced), trend=trend, alerts=this_run,
        recent_alerts=recent, psi=dict(result.psi), quality=result.quality,
        performance=result.performance, label_drift=result.label_drift,
        segments=list(result.segments), generated_at=datetime.now(UTC))


def _run_row(conn: Connection, vid: int, uri: str, run_id: str | None) -> Row[Any]:
    query = select(monitor_runs).where(monitor_runs.c.model_version_id == vid)
    if run_id is None:
        row = conn.execute(query.order_by(monitor_runs.c.created_at.desc(),
                                          monitor_runs.c.id.desc()).limit(1)).first()
        if row is None:
            raise NotFound(f"{uri} has no monitor runs: run one first (ws.monitor(uri).run(...)"
                           " or `modelworks monitor run`)")
        return row
    wanted = str(run_id).strip().lower()
    if not _RUN_ID.match(wanted):
        raise NotFound(f"no monitor run {run_id!r} of {uri}")
    found = conn.execute(query.where(monitor_runs.c.id.startswith(wanted)).limit(2)).all()
    if not found:
        raise NotFound(f"no monitor run {run_id!r} of {uri}; list them with "
                       "`modelworks monitor runs`")
    exact = [r for r in found if r.id == wanted]
    if len(found) > 1 and not exact:
        raise InvalidInput(f"run id {run_id!r} matches more than one run of {uri}; give more "
                           "characters", field="run")
    return exact[0] if exact else found[0]


def _load_run(ctx: Context, sha256: str) -> MonitorResult:
    return MonitorResult.model_validate_json(ctx.artifacts.get_bytes(sha256))


# Figures of a segment kept in the trend (a segment has every key of the run: per column
# drift and quality keys would make 30 points x 20 values x 100s of columns).
SEGMENT_TREND = ("rows", "positive_rate", "error_rate", "drift.share", "quality.error_rate")


def _trended(key: str) -> bool:
    """Whether a flat metric key goes into the trend: run-level quality, performance and
    label drift, and a few figures per segment value."""
    if key.startswith("segment."):
        found = segment_of(key)
        return found is not None and key[len(f"segment.{found[0]}={found[1]}."):] in \
            SEGMENT_TREND
    return key.startswith(("performance.", "drift.label.")) or (
        key.startswith("quality.") and not key.startswith("quality.column."))


def _point(result: MonitorResult) -> TrendPoint:
    metrics = {k: float(v) for k, v in metrics_of(result).items()
               if _trended(k) and isinstance(v, int | float) and math.isfinite(v)}
    return TrendPoint(
        run_id=result.id, created_at=result.created_at, window_start=result.window_start,
        window_end=result.window_end, rows=result.rows, share=result.drift.share,
        dataset_drift=result.drift.dataset_drift,
        scores={c.column: c.score for c in result.drift.columns},
        drifted={c.column: c.drifted for c in result.drift.columns}, metrics=metrics)


def _severity(c: ColumnDrift) -> float:
    """How far past (or short of) its threshold a column is: > 1 means drifted."""
    if c.score is None or not c.threshold:
        return -1.0
    if c.p_value is not None and c.score == c.p_value:  # a test: small p is severe
        return min(c.threshold / max(c.score, 1e-300), 1e12)
    return c.score / c.threshold


def _columns(result: MonitorResult, reference: ReferenceProfile, replaced: bool
             ) -> list[ColumnReport]:
    refs = {c.name: c for c in reference.columns}
    window = result.window_profile
    currents = {c.name: c for c in window.columns} if window is not None else {}
    out: list[ColumnReport] = []
    for verdict in result.drift.columns:
        ref, cur = refs.get(verdict.column), currents.get(verdict.column)
        note = None
        distribution = None
        if ref is None:
            note = "the reference profile has no such column"
        elif replaced:
            note = "the reference was profiled again after this run; its cells no longer match"
        elif window is None:
            note = "this run stored no window profile"
        elif cur is None:
            note = "the column is not in the current data"
        elif cur.count == 0 or ref.count == 0:
            note = "no values to plot"
        else:
            distribution = distribution_of(ref, cur)
            if distribution is None:
                note = "the window was not counted on this reference's cells"
        out.append(ColumnReport(
            drift=verdict, reference_missing_rate=_missing_rate(ref),
            current_missing_rate=_missing_rate(cur), distribution=distribution, note=note))
    out.sort(key=lambda c: (not c.drift.drifted, c.drift.status != "scored",
                            -_severity(c.drift), c.column))
    return out


def _missing_rate(profile: ColumnProfile | None) -> float | None:
    if profile is None or profile.count + profile.missing == 0:
        return None
    return profile.missing / (profile.count + profile.missing)


# --- distributions ---------------------------------------------------------------------------


def distribution_of(ref: ColumnProfile, cur: ColumnProfile) -> Distribution | None:
    """What to draw for a reference column and a window counted on it (None if the window
    was counted on other cells)."""
    if ref.numeric is not None and cur.numeric is not None:
        if ref.numeric.edges != cur.numeric.edges:
            return None
        if ref.numeric.exact_edges and len(ref.numeric.edges) <= DISCRETE_MAX:
            return _discrete(ref, cur)
        return _histogram(ref, cur)
    if ref.categorical is not None and cur.categorical is not None:
        if ref.categorical.categories != cur.categorical.categories:
            return None
        return _categories(ref, cur)
    return None


def _discrete(ref: ColumnProfile, cur: ColumnProfile) -> Distribution:
    """Few distinct reference values: one bar per value, the window's new values apart."""
    assert ref.numeric is not None and cur.numeric is not None
    r, c = ref.numeric, cur.numeric
    r_total, c_total = sum(r.counts) or 1, sum(c.counts) or 1
    labels = [_value_label(e) for e in r.edges]
    reference = [r.counts[2 * i + 1] / r_total for i in range(len(r.edges))]
    current = [c.counts[2 * i + 1] / c_total for i in range(len(r.edges))]
    new = [False] * len(labels)
    between = sum(c.counts[0::2])  # the window's values on no reference value
    for value, count in zip(c.novel_values, c.novel_counts, strict=True):
        labels.append(_value_label(value))
        reference.append(0.0)
        current.append(count / c_total)
        new.append(True)
        between -= count
    if between > 0:
        labels.append("other values")
        reference.append(sum(r.counts[0::2]) / r_total)
        current.append(between / c_total)
        new.append(True)
    return Distribution(kind="bars", labels=labels, new=new, reference=reference,
                        current=current, current_below=c.counts[0] / c_total,
                        current_above=c.counts[-1] / c_total)


def _histogram(ref: ColumnProfile, cur: ColumnProfile) -> Distribution:
    """Many values: groups of adjacent reference cells as bins, densities on both sides."""
    assert ref.numeric is not None and cur.numeric is not None
    r, c = ref.numeric, cur.numeric
    edges = r.edges
    k = len(edges)
    step = max(1, math.ceil((k - 1) / _PLOT_BINS))
    marks = [*range(0, k - 1, step), k - 1]
    r_total, c_total = sum(r.counts) or 1, sum(c.counts) or 1
    plot_edges = [float(edges[i]) for i in marks]
    ref_counts: list[float] = []
    cur_counts: list[float] = []
    for j in range(len(marks) - 1):
        # cells from the point at edge a up to (not including) the point at edge b; the last
        # bin also takes the point at the last edge
        lo, hi = 2 * marks[j] + 1, 2 * marks[j + 1] + (2 if j == len(marks) - 2 else 1)
        ref_counts.append(float(sum(r.counts[lo:hi])))
        cur_counts.append(float(sum(c.counts[lo:hi])))
    span = plot_edges[-1] - plot_edges[0]
    below, above = c.counts[0], c.counts[-1]
    clipped = False
    if below and c.min is not None:
        start = max(c.min, plot_edges[0] - span / 2)
        clipped = clipped or start > c.min
        plot_edges.insert(0, start if start < plot_edges[0] else plot_edges[0] - span / 100)
        ref_counts.insert(0, 0.0)
        cur_counts.insert(0, float(below))
    if above and c.max is not None:
        stop = min(c.max, plot_edges[-1] + span / 2)
        clipped = clipped or stop < c.max
        plot_edges.append(stop if stop > plot_edges[-1] else plot_edges[-1] + span / 100)
        ref_counts.append(0.0)
        cur_counts.append(float(above))
    widths = [b - a for a, b in pairwise(plot_edges)]
    return Distribution(
        kind="histogram", edges=plot_edges,
        reference=[n / r_total / w if w > 0 else 0.0 for n, w in zip(ref_counts, widths,
                                                                      strict=True)],
        current=[n / c_total / w if w > 0 else 0.0 for n, w in zip(cur_counts, widths,
                                                                    strict=True)],
        current_below=below / c_total, current_above=above / c_total, clipped=clipped)


def _categories(ref: ColumnProfile, cur: ColumnProfile) -> Distribution:
    """Category shares; the window's unseen categories marked new; rare ones in (other)."""
    assert ref.categorical is not None and cur.categorical is not None
    r, c = ref.categorical, cur.categorical
    r_total = (sum(r.counts) + r.other) or 1
    c_total = (sum(c.counts) + sum(c.unseen.values()) + c.other) or 1
    rows = [(name, rc / r_total, cc / c_total, False)
            for name, rc, cc in zip(r.categories, r.counts, c.counts, strict=True)]
    rows += [(name, 0.0, cc / c_total, True) for name, cc in c.unseen.items()]
    rows.sort(key=lambda x: -max(x[1], x[2]))
    shown, rest = rows[:_PLOT_BARS], rows[_PLOT_BARS:]
    other_ref = r.other / r_total + sum(x[1] for x in rest)
    other_cur = c.other / c_total + sum(x[2] for x in rest)
    if other_ref > 0 or other_cur > 0:
        shown.append((OTHER, other_ref, other_cur, False))
    return Distribution(kind="bars", labels=[x[0] for x in shown],
                        reference=[x[1] for x in shown], current=[x[2] for x in shown],
                        new=[x[3] for x in shown])


def _value_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"
