"""Write and read lineage edges: "child was made from parent"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, and_, bindparam, or_, select

from ..store.tables import lineage_edges, utcnow

__all__ = ["LineageEdge", "Node", "add_edge", "add_new_edges", "edges_of"]

# Built once with bound parameters: constructing the statement costs more than running it,
# and pipelines write several edges per step.
_t = lineage_edges
_EXISTING = select(_t.c.id).where(
    _t.c.child_type == bindparam("ct"), _t.c.child_id == bindparam("ci"),
    _t.c.parent_type == bindparam("pt"), _t.c.parent_id == bindparam("pi"),
    _t.c.relation == bindparam("rel"))
_INSERT = _t.insert()


class Node(BaseModel):
    """An entity in the lineage graph, e.g. ``Node(type="run", id="ab12...")``."""

    model_config = ConfigDict(frozen=True)

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


class LineageEdge(BaseModel):
    model_config = ConfigDict(frozen=True)

    child: Node
    parent: Node
    relation: str
    payload: dict[str, Any]


def add_edge(
    conn: Connection,
    *,
    child: Node,
    parent: Node,
    relation: str,
    actor: str,
    payload: Mapping[str, Any] | None = None,
) -> LineageEdge:
    """Record one edge in the caller's transaction; recording it twice is a no-op."""
    existing = conn.execute(_EXISTING, {"ct": child.type, "ci": child.id, "pt": parent.type,
                                        "pi": parent.id, "rel": relation}).first()
    if existing is None:
        conn.execute(_INSERT, {
            "child_type": child.type, "child_id": child.id, "parent_type": parent.type,
            "parent_id": parent.id, "relation": relation, "payload": dict(payload or {}),
            "created_at": utcnow(), "created_by": actor})
    return LineageEdge(child=child, parent=parent, relation=relation, payload=dict(payload or {}))


def add_new_edges(conn: Connection, edges: Sequence[LineageEdge], *, actor: str) -> None:
    """Record edges whose child was created in this transaction, with one multi-row insert.

    No edge can exist yet for a node that did not exist, so the per-edge lookup of
    :func:`add_edge` is skipped; for ``train_many`` that halves the statements per model.
    """
    if not edges:
        return
    now = utcnow()
    conn.execute(_INSERT, [{
        "child_type": e.child.type, "child_id": e.child.id, "parent_type": e.parent.type,
        "parent_id": e.parent.id, "relation": e.relation, "payload": dict(e.payload),
        "created_at": now, "created_by": actor} for e in edges])


def edges_of(conn: Connection, nodes: list[Node], *, direction: str = "up") -> list[LineageEdge]:
    """Edges whose child (``up``: where it came from) or parent (``down``) is one of nodes."""
    if not nodes:
        return []
    t = lineage_edges
    side = (t.c.child_type, t.c.child_id) if direction == "up" else (t.c.parent_type, t.c.parent_id)
    cond = or_(*(and_(side[0] == n.type, side[1] == n.id) for n in nodes))
    rows = conn.execute(select(t).where(cond).order_by(t.c.id)).all()
    return [
        LineageEdge(
            child=Node(type=r.child_type, id=r.child_id),
            parent=Node(type=r.parent_type, id=r.parent_id),
            relation=r.relation,
            payload=r.payload or {},
        )
        for r in rows
    ]
