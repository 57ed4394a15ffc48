"""Experiment tracking: experiments, runs, params, tags, batched metrics and run search."""

from __future__ import annotations

from .active_run import ActiveRun
from .filters import Comparison, OrderTerm, parse_filter, parse_order_by
from .metrics import MetricWriter

__all__ = ["ActiveRun", "Comparison", "MetricWriter", "OrderTerm", "parse_filter",
           "parse_order_by"]
