"""The quickstart's closing page: the whole lifecycle on one self-contained HTML page.

What happened (the audit log's lifecycle events, in order), the drift that started it (per
column, stable against shifted window, and the most drifted columns' distributions), the
candidate's validation next to the version it replaces on the same data, the canary's
comparison, and links to the detailed reports the run wrote next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..monitoring.monitor import MonitorResult
from ..monitoring.report_page import distribution_svg
from ..monitoring.retrain_runs import RetrainResult
from ..reports import bar_overlay, render_page
from ..workspace import Workspace

__all__ = ["write_summary"]

# Audit actions that tell the lifecycle's story (the rest are details of these).
_STORY = ("model_version.registered", "model_version.validated", "policy.", "approval.",
          "model_alias.", "deployment.", "model_version.monitored", "alert.raised",
          "retrain.started", "retrain.finished", "monitoring_plan.", "training_spec.",
          "dataset_version.created")


def _story(ws: Workspace) -> list[dict[str, Any]]:
    events = ws.audit_log(limit=None)
    rows = []
    for e in reversed(events):  # oldest first
        if not e.action.startswith(_STORY):
            continue
        detail = e.reason or ", ".join(f"{k}={v}" for k, v in list(e.payload.items())[:4]
                                       if isinstance(v, str | int | float | bool))
        rows.append({"ts": e.ts.strftime("%H:%M:%S"), "actor": e.actor, "action": e.action,
                     "entity": f"{e.entity_type} {e.entity_id}", "detail": detail[:160]})
    return rows


def _drift_chart(calm: MonitorResult, alarm: MonitorResult) -> str:
    scores = {c.column: c.value or 0.0 for c in calm.drift.columns if c.status == "scored"}
    shifted = {c.column: c.value or 0.0 for c in alarm.drift.columns if c.status == "scored"}
    names = [n for n in shifted if n in scores]
    return bar_overlay(names, [scores[n] for n in names], [shifted[n] for n in names],
                       marked=[c.drifted for c in alarm.drift.columns if c.column in names],
                       label="drift statistic per column: stable window (top), shifted "
                             "(bottom)")


def _validation_rows(ws: Workspace, retrain: RetrainResult | None
                     ) -> tuple[list[dict[str, Any]], str | None]:
    if retrain is None or retrain.candidate is None:
        return [], None
    reports = ws.validation_reports(retrain.candidate)
    if not reports:
        return [], None
    report = reports[0]
    comparison = report.comparison
    rows = []
    for name, value in report.metrics.items():
        old = comparison.metrics.get(name) if comparison else None
        rows.append({"metric": name, "candidate": value.value, "low": value.low,
                     "high": value.high, "old": old,
                     "delta": comparison.delta.get(name) if comparison else None})
    against = (f"version {comparison.version} (@{comparison.alias})" if comparison else None)
    return rows, against


def write_summary(ws: Workspace, model: str, alias: str, reports: Path, *, endpoint: str,
                  first: str, calm: MonitorResult, alarm: MonitorResult,
                  retrain: RetrainResult | None) -> Path:
    """Write ``reports/lifecycle-<model>.html`` and return its path."""
    report = ws.monitor_report(f"models:/{model}/{alarm.version}", run_id=alarm.id)
    top = [c for c in report.columns if c.drift.drifted][:3]
    validation, against = _validation_rows(ws, retrain)
    analyses = ws.canary_analyses(endpoint, limit=1)
    links = sorted(p.name for p in reports.iterdir() if p.suffix in (".html", ".jsonl")
                   and not p.name.startswith("lifecycle-"))
    page = render_page("lifecycle.html.j2", {
        "model": model, "alias": alias, "endpoint": endpoint, "first": first,
        "production": ws.resolve_model(f"models:/{model}@{alias}").uri,
        "calm": calm, "alarm": alarm, "retrain": retrain,
        "alerts": [a for a in alarm.alerts if a.status == "firing"],
        "drift_chart": _drift_chart(calm, alarm),
        "top": [{"name": c.column, "svg": distribution_svg(c), "drift": c.drift}
                for c in top],
        "validation": validation, "against": against,
        "analysis": analyses[0] if analyses else None,
        "story": _story(ws), "links": links,
        "audit": ws.verify_audit(),
    }, package="modelworks.quickstart")
    path = reports / f"lifecycle-{model}.html"
    path.write_text(page, encoding="utf-8")
    return path
