"""``trace prediction:ID``: a served prediction back to its model version and training data.

Predictions are not lineage edges (one row per prediction would flood the edge table);
each logged record names its model version, and that is the edge: the trace reads the
record from the prediction log and puts it on top of the version's own trace,
``prediction -> model version -> run -> datasets, code, environment``.
"""

from __future__ import annotations

from typing import Any

from ..lineage import LineageEdge, LineageGraph, Node
from ..registry.records import ModelTrace
from .records import PredictionRecord

__all__ = ["PredictionTrace", "extend_trace"]


class PredictionTrace(ModelTrace):
    """A version's trace with the prediction as its root; ``label`` is its feedback."""

    prediction: PredictionRecord
    label: Any = None


def prediction_facts(record: PredictionRecord, label: Any = None) -> dict[str, Any]:
    from datetime import UTC, datetime

    facts: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.ts, UTC).isoformat(timespec="milliseconds"),
        "endpoint": record.endpoint, "model": record.model, "version": record.version,
        "output": record.output, "latency_ms": record.latency_ms, "shadow": record.shadow,
    }
    if label is not None:
        facts["label"] = label
    return facts


def extend_trace(trace: ModelTrace, record: PredictionRecord, *, label: Any = None
                 ) -> PredictionTrace:
    """The version's trace with ``prediction:ID -[predicted_by]-> model_version`` on top."""
    root = Node(type="prediction", id=record.prediction_id)
    version = trace.graph.root
    edge = LineageEdge(child=root, parent=version, relation="predicted_by",
                       payload={"model": record.model, "version": record.version})
    graph = LineageGraph(
        root=root,
        nodes=[root, *trace.graph.nodes],
        edges=[edge, *trace.graph.edges],
        facts={str(root): prediction_facts(record, label), **trace.graph.facts},
    )
    return PredictionTrace(uri=trace.uri, version=trace.version, graph=graph,
                           alias_moves=trace.alias_moves, audit=trace.audit,
                           prediction=record, label=label)
