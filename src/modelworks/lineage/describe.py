"""What a lineage node is, read from the core tables: the facts a trace shows beside it.

Lineage is core, so it reads tables (which are core too), never service modules. A run also
yields two derived nodes, its code version and its environment, so a trace reads
model version -> run -> datasets, code, environment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from ..store.tables import (
    dataset_versions,
    datasets,
    experiments,
    model_versions,
    registered_models,
    runs,
)
from .edges import LineageEdge, Node

__all__ = ["derived_edges", "describe"]


def _run(conn: Connection, run_id: str) -> dict[str, Any]:
    row = conn.execute(select(runs, experiments.c.name.label("experiment"))
                       .join(experiments, experiments.c.id == runs.c.experiment_id)
                       .where(runs.c.id == run_id)).first()
    if row is None:
        return {"missing": True}
    return {"name": row.name, "experiment": row.experiment, "status": row.status,
            "actor": row.actor, "start_time": row.start_time.isoformat(),
            "git_commit": row.git_commit, "git_dirty": row.git_dirty,
            "python_version": row.python_version, "packages_hash": row.packages_hash,
            "host": row.host}


def _dataset_version(conn: Connection, version_id: str) -> dict[str, Any]:
    if not version_id.isdigit():
        return {"missing": True}
    row = conn.execute(select(dataset_versions, datasets.c.name)
                       .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                       .where(dataset_versions.c.id == int(version_id))).first()
    if row is None:
        return {"missing": True}
    columns = {c["name"]: {k: c.get(k) for k in ("kind", "missing", "is_identifier")}
               for c in (row.profile or {}).get("columns", [])}
    return {"dataset": row.name, "version": row.version, "content_hash": row.content_hash,
            "rows": row.row_count, "columns": columns}


def _model_version(conn: Connection, ref: str) -> dict[str, Any]:
    name, _, version = ref.rpartition("/")
    if not version.isdigit():
        return {"missing": True}
    row = conn.execute(select(model_versions).join(
        registered_models, registered_models.c.id == model_versions.c.model_id).where(
        registered_models.c.name == name, model_versions.c.version == int(version))).first()
    if row is None:
        return {"missing": True}
    return {"format": row.format, "sha256": row.artifact_sha256, "status": row.status,
            "created_by": row.created_by, "created_at": row.created_at.isoformat()}


def describe(conn: Connection, node: Node) -> dict[str, Any]:
    """The node's facts; unknown types describe as empty (later services add theirs)."""
    if node.type == "run":
        return _run(conn, node.id)
    if node.type == "dataset_version":
        return _dataset_version(conn, node.id)
    if node.type == "model_version":
        return _model_version(conn, node.id)
    return {}


def derived_edges(node: Node, facts: dict[str, Any]) -> list[LineageEdge]:
    """A run's code version and environment, as nodes of their own."""
    if node.type != "run" or facts.get("missing"):
        return []
    out = []
    if facts.get("git_commit"):
        out.append(LineageEdge(child=node, parent=Node(type="code", id=facts["git_commit"]),
                               relation="code", payload={"dirty": facts.get("git_dirty")}))
    out.append(LineageEdge(child=node,
                           parent=Node(type="environment", id=facts["packages_hash"]),
                           relation="environment",
                           payload={"python": facts.get("python_version"),
                                    "host": facts.get("host")}))
    return out
