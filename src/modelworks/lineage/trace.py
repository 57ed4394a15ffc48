"""Walk lineage edges from one entity to everything it was made from (or made)."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import Connection

from .edges import LineageEdge, Node, edges_of

__all__ = ["LineageGraph", "walk"]


class LineageGraph(BaseModel):
    root: Node
    nodes: list[Node]
    edges: list[LineageEdge]


def walk(
    conn: Connection, root: Node, *, direction: str = "up", max_depth: int = 50
) -> LineageGraph:
    """Breadth-first walk; one query per level, so depth, not size, sets the query count."""
    seen = {root}
    frontier = [root]
    edges: list[LineageEdge] = []
    for _ in range(max_depth):
        level = edges_of(conn, frontier, direction=direction)
        frontier = []
        for edge in level:
            edges.append(edge)
            nxt = edge.parent if direction == "up" else edge.child
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
        if not frontier:
            break
    return LineageGraph(root=root, nodes=list(seen), edges=edges)
