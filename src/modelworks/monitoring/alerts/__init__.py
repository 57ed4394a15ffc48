"""Monitoring plans and alerts: rules on a monitor run's metrics, stored, audited, delivered.

``plan`` parses and stores a model's plan (rules, sinks, schedule); ``rules`` checks it
against ``MonitorResult.metrics()``; ``store`` raises alerts inside the monitor's transaction
(dedupe, cool-down) and reads them back; ``sinks`` and ``delivery`` send them after commit.
"""

from __future__ import annotations

from .delivery import DeliveryHandle, deliver_alerts, deliver_pending, join_outstanding
from .plan import AlertRule, MonitoringPlan, PlanSpec, get_plan, parse_plan, plan_of, set_plan
from .rules import RuleCheck, evaluate_rules, metrics_of
from .sinks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature
from .store import Alert, Delivery, deliveries_of, get_alert, list_alerts, raise_alerts

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "AlertRule",
    "Delivery",
    "DeliveryHandle",
    "MonitoringPlan",
    "PlanSpec",
    "RuleCheck",
    "deliver_alerts",
    "deliver_pending",
    "deliveries_of",
    "evaluate_rules",
    "get_alert",
    "get_plan",
    "join_outstanding",
    "list_alerts",
    "metrics_of",
    "parse_plan",
    "plan_of",
    "raise_alerts",
    "set_plan",
    "sign",
    "verify_signature",
]
