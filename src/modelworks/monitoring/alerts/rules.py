"""Evaluate a plan's rules against a monitor run's flat metrics.

A rule's ``metric`` is a key of ``MonitorResult.metrics()`` or a pattern in which ``*``
matches any characters (dots included), so ``drift.column.*.psi`` checks every column and
``segment.region=*.drift.share`` every region — one check, and one alert, per matching key.
Only ``*`` is special: brackets and question marks in segment values match themselves.
A key the run does not have (no labels yet, a segment absent from the window) is recorded as
not evaluated, never an error; so is a value that is not a number.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from .plan import AlertRule, PlanSpec

if TYPE_CHECKING:
    from ..monitor import MonitorResult

__all__ = ["RuleCheck", "breaches", "evaluate_rules", "match_keys", "metrics_of", "segment_of"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq}
ABSENT = "not evaluated: metric absent"
NOT_A_NUMBER = "not evaluated: value is not a number"


class RuleCheck(BaseModel):
    """One rule checked on one metric key."""

    model_config = ConfigDict(frozen=True)

    rule: str
    metric: str
    value: float | None
    status: Literal["breached", "ok", "not_evaluated"]
    reason: str


def breaches(value: float, op: str, threshold: float) -> bool:
    return _OPS[op](value, threshold)


def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$")


def match_keys(glob: str, keys: list[str]) -> list[str]:
    """The keys a rule's metric names: itself, or every key its ``*`` pattern matches."""
    if "*" not in glob:
        return [glob] if glob in keys else []
    pattern = _pattern(glob)
    return [k for k in keys if pattern.match(k)]


def segment_of(key: str) -> tuple[str, str] | None:
    """(column, value) of a ``segment.<col>=<value>.<key>`` metric key, else None."""
    if not key.startswith("segment.") or "=" not in key:
        return None
    column, _, rest = key[len("segment."):].partition("=")
    for i, ch in enumerate(rest):
        if ch == "." and rest[i + 1:].split(".", 1)[0] in (
                "rows", "positive_rate", "error_rate", "drift", "quality", "performance"):
            return column, rest[:i]
    return column, rest


def metrics_of(result: MonitorResult) -> dict[str, float]:
    """The run's flat metrics (``MonitorResult.metrics()``), the keys rules name."""
    return dict(result.metrics())


def _check(rule: AlertRule, key: str, raw: Any) -> RuleCheck:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        return RuleCheck(rule=rule.name, metric=key, value=None, status="not_evaluated",
                         reason=NOT_A_NUMBER)
    hit = breaches(value, rule.op, rule.threshold)
    return RuleCheck(rule=rule.name, metric=key, value=value,
                     status="breached" if hit else "ok",
                     reason=f"{value:.6g} {rule.op if hit else 'not ' + rule.op} "
                            f"{rule.threshold:g}")


def evaluate_rules(plan: PlanSpec, metrics: Mapping[str, Any]) -> list[RuleCheck]:
    """Every rule on every key it names; an absent key is a ``not_evaluated`` check."""
    keys = sorted(metrics)
    checks: list[RuleCheck] = []
    for rule in plan.rules:
        matched = match_keys(rule.metric, keys)
        if not matched:
            checks.append(RuleCheck(rule=rule.name, metric=rule.metric, value=None,
                                    status="not_evaluated", reason=ABSENT))
        checks.extend(_check(rule, key, metrics[key]) for key in matched)
    return checks
