"""How ``deploy canary-check`` shows a canary analysis to people (``--json`` is the record)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ._output import cell, fmt_number, fmt_time, kv_grid, table

if TYPE_CHECKING:
    from ..monitoring.canary_analysis import CanaryAnalysis
    from ..monitoring.canary_checks import ArmStats

__all__ = ["EXIT_CODES", "analysis_view", "verdict_text"]

# pass 0; fail 1 (as a failed check elsewhere); inconclusive 3 (2 is a usage error), so
# `canary-check NAME && deploy promote NAME` never promotes on too little traffic.
EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3}
_STYLES = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "skipped": "dim"}


def verdict_text(verdict: str) -> Text:
    return Text(verdict, style=_STYLES.get(verdict, ""))


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _arm_row(t: Table, arm: ArmStats, verdict: Text, action: str) -> None:
    t.add_row(cell(arm.uri), cell(arm.role), cell(f"{arm.weight:g}%" if arm.weight is not None
                                                  else "copy"),
              cell(arm.requests), cell(_share(arm.error_rate)),
              cell(fmt_number(arm.latency_p95_ms, digits=4)), cell(_share(arm.accuracy)),
              cell(_share(arm.agreement)), verdict, cell(action))


def analysis_view(analysis: CanaryAnalysis) -> Group:
    """The header, one row per arm, then each candidate's checks."""
    head = kv_grid([
        ("analysis", analysis.id), ("endpoint", analysis.endpoint),
        ("verdict", verdict_text(analysis.verdict)), ("action", analysis.action),
        ("window", f"{fmt_time(analysis.window_start)} → {fmt_time(analysis.window_end)}"),
        *([("rollback refused", analysis.rollback_error)] if analysis.rollback_error else []),
    ])
    arms = table("model", "role", "traffic", "requests", "errors", "p95 ms", "accuracy",
                 "agreement", "verdict", "action", title="main entry and candidates",
                 options={c: {"justify": "right"} for c in
                          ("requests", "errors", "p95 ms", "accuracy", "agreement")})
    _arm_row(arms, analysis.baseline, Text(""), "")
    for c in analysis.comparisons:
        _arm_row(arms, c.candidate, verdict_text(c.verdict), c.action)
    parts: list[Table] = [head, arms]
    for c in analysis.comparisons:
        checks = table("check", "value", "threshold", "outcome", "detail",
                       title=f"{c.candidate.uri} ({c.candidate.role})"
                       + (f": {c.note}" if c.note else ""),
                       options={"value": {"justify": "right"},
                                "threshold": {"justify": "right"},
                                "detail": {"overflow": "fold"}})
        for k in c.checks:
            checks.add_row(cell(k.name), cell(fmt_number(k.value, digits=4)),
                           cell(fmt_number(k.threshold, digits=4)), verdict_text(k.outcome),
                           cell(k.detail))
        parts.append(checks)
    return Group(*parts)
