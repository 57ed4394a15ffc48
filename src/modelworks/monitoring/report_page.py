"""The monitoring report as one self-contained HTML page (inline SVG charts, no scripts).

Per column: reference vs current distribution and the trend of its drift score; for the
dataset: the trend of the drifted share; then alerts, the statistics table and, when the run
has them, quality, performance and segments. Columns are ``<details>`` blocks, drifted ones
first and the first few open, so a page with hundreds of columns stays readable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..reports import bar_overlay, histogram_overlay, line_chart, render_page
from .alerts.rules import segment_of

if TYPE_CHECKING:
    from .report import ColumnReport, MonitorReport, TrendPoint

__all__ = ["render_report"]

_TEMPLATE = "monitor_report.html.j2"
OPEN_COLUMNS = 8  # drifted columns shown expanded; the rest collapsed
# per-segment figures drawn across runs, and what the page calls them
_SEGMENT_FIGURES = {"positive_rate": "positive rate", "error_rate": "error rate",
                    "drift.share": "drift share", "quality.error_rate": "quality error rate"}


def _labels(points: Sequence[TrendPoint]) -> list[str]:
    """Run times as short as the trend's span allows."""
    if not points:
        return []
    span = points[-1].created_at - points[0].created_at
    form = "%H:%M:%S" if span < timedelta(hours=1) else "%m-%d %H:%M" if span < timedelta(
        days=2) else "%Y-%m-%d"
    return [p.created_at.strftime(form) for p in points]


def distribution_svg(c: ColumnReport) -> str | None:
    d = c.distribution
    if d is None:
        return None
    label = f"reference vs current distribution of {c.column}"
    if d.kind == "histogram":
        return histogram_overlay(d.edges, d.reference, d.current, label=label)
    return bar_overlay(d.labels, d.reference, d.current, marked=d.new, label=label)


def _is_test(c: ColumnReport) -> bool:
    return c.drift.p_value is not None and c.drift.score == c.drift.p_value


def _score_name(c: ColumnReport) -> str:
    """What a column's trend plots: the p-value of a test, the value of a distance."""
    return "p-value" if _is_test(c) else (c.drift.method or "score")


def _column_trend(report: MonitorReport, c: ColumnReport) -> str | None:
    points = [p for p in report.trend if c.column in p.scores]
    if len(points) < 2:
        return None
    return line_chart([("", [p.scores.get(c.column) for p in points])],
                      _labels(points), threshold=c.drift.threshold,
                      marked=[p.drifted.get(c.column, False) for p in points],
                      label=f"{_score_name(c)} of {c.column} across runs")


def _share_trend(report: MonitorReport) -> str | None:
    if len(report.trend) < 2:
        return None
    return line_chart([("", [p.share for p in report.trend])],
                      _labels(report.trend), threshold=report.drift_share,
                      marked=[p.dataset_drift for p in report.trend],
                      label="share of drifted columns across runs")


def _metric_trend(report: MonitorReport, series: list[tuple[str, str]], label: str
                  ) -> str | None:
    """A chart of flat metrics (``(name, key)`` pairs) across runs, if any run has them."""
    points = report.trend
    values = [(name, [p.metrics.get(key) for p in points]) for name, key in series]
    values = [(n, v) for n, v in values if sum(x is not None for x in v) >= 1]
    if len(points) < 2 or not values:
        return None
    return line_chart(values, _labels(points), label=label, from_zero=False)


# --- quality, performance, segments -----------------------------------------------------------


def _quality(report: MonitorReport) -> dict[str, Any] | None:
    q = report.quality
    if q is None:
        return None
    # five checks per column: show what was found, flagged first; say how many passed
    found = sorted((c for c in q.checks if c.count or c.flagged),
                   key=lambda c: (not c.flagged, -c.count, c.column, c.check))
    return {"q": q, "checks": found, "clean": len(q.checks) - len(found),
            "trend": _metric_trend(report, [("error rate", "quality.error_rate")],
                                   "share of rows with a quality error across runs")}


def _performance(report: MonitorReport) -> dict[str, Any] | None:
    p = report.performance
    if p is None:
        return None
    names = list(dict.fromkeys([*p.metrics, *p.estimated, *p.baseline]))
    rows = [{"metric": n, "real": p.metrics.get(n), "estimated": p.estimated.get(n),
             "baseline": p.baseline.get(n), "drop": p.drop.get(n),
             "estimated_drop": p.estimated_drop.get(n)} for n in names]
    charts = [(n, _metric_trend(report, [("real", f"performance.{n}"),
                                         ("estimated", f"performance.estimated.{n}")],
                                f"{n} across runs")) for n in names]
    return {"p": p, "table": rows, "charts": [(n, svg) for n, svg in charts if svg],
            "classes": [str(c) for c in p.classes or []]}


def _label_drift(report: MonitorReport) -> dict[str, Any] | None:
    d = report.label_drift
    if d is None:
        return None
    return {"d": d, "score_name": "p-value" if d.p_value is not None else "distance",
            "trend": _metric_trend(report, [("label drift", "drift.label.score")],
                                   "label drift score across runs")}


def _segments(report: MonitorReport) -> dict[str, Any] | None:
    if not report.segments:
        return None
    # segment.<column>=<value>.<figure> keys across runs: one chart per column and figure
    keys: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for point in report.trend:
        for key in point.metrics:
            found = segment_of(key)
            if found is None:
                continue
            column, value = found
            figure = key[len(f"segment.{column}={value}."):]
            if figure in _SEGMENT_FIGURES:
                keys[(column, figure)][value] = key
    charts = []
    for (column, figure), by_value in sorted(keys.items()):
        svg = _metric_trend(report, sorted(by_value.items()), f"{figure} per {column} value")
        if svg:
            charts.append((f"{_SEGMENT_FIGURES[figure]} by {column}", svg))
    rows = []
    for seg in report.segments:
        perf = seg.performance
        figures = ""
        if perf is not None:
            figures = ", ".join([*(f"{k} {v:.3f}" for k, v in perf.metrics.items()),
                                 *(f"{k} {v:.3f} (est.)" for k, v in perf.estimated.items()
                                   if k not in perf.metrics)][:4])
        rows.append({"s": seg, "drifted": ", ".join(seg.drifted_columns), "figures": figures})
    return {"rows": rows, "charts": charts}


def render_report(report: MonitorReport) -> str:
    columns = []
    opened = 0
    for i, c in enumerate(report.columns):
        expand = c.drift.drifted and opened < OPEN_COLUMNS
        opened += expand
        columns.append({"i": i, "c": c, "open": expand, "test": _is_test(c),
                        "score_name": _score_name(c),
                        "distribution": distribution_svg(c), "trend": _column_trend(report, c)})
    context: dict[str, Any] = {
        "r": report, "columns": columns, "share_trend": _share_trend(report),
        "quality": _quality(report), "performance": _performance(report),
        "label_drift": _label_drift(report), "segments": _segments(report),
    }
    return render_page(_TEMPLATE, context, package="modelworks.monitoring")
