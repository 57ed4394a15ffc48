"""Walk lineage edges from one entity to everything it was made from (or made)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from .describe import derived_edges, describe
from .edges import LineageEdge, Node, edges_of

__all__ = ["LineageGraph", "render_dot", "render_tree", "trace", "walk"]


class LineageGraph(BaseModel):
    root: Node
    nodes: list[Node]
    edges: list[LineageEdge]
    facts: dict[str, dict[str, Any]] = {}


def trace(conn: Connection, root: Node, *, max_depth: int = 50) -> LineageGraph:
    """Everything ``root`` was made from, each node described, plus code and environment."""
    graph = walk(conn, root, max_depth=max_depth)
    facts: dict[str, dict[str, Any]] = {}
    nodes = list(graph.nodes)
    edges = list(graph.edges)
    for node in graph.nodes:
        facts[str(node)] = describe(conn, node)
        for edge in derived_edges(node, facts[str(node)]):
            edges.append(edge)
            if edge.parent not in nodes:
                nodes.append(edge.parent)
                facts[str(edge.parent)] = dict(edge.payload)
    return LineageGraph(root=root, nodes=nodes, edges=edges, facts=facts)


def _label(graph: LineageGraph, node: Node) -> str:
    facts = graph.facts.get(str(node), {})
    keys = {"run": ("name", "experiment", "status"), "dataset_version": ("dataset", "version",
            "content_hash", "rows"), "model_version": ("format", "sha256", "status"),
            "code": ("dirty",), "environment": ("python", "host"),
            "prediction": ("ts", "endpoint", "output", "label")}.get(node.type, ())
    shown = ", ".join(f"{k}={str(facts[k])[:16]}" for k in keys if facts.get(k) is not None)
    return f"{node}" + (f"  ({shown})" if shown else "")


def render_tree(graph: LineageGraph) -> str:
    """A readable tree from the root to what it was made from."""
    parents: dict[Node, list[LineageEdge]] = {}
    for edge in graph.edges:
        parents.setdefault(edge.child, []).append(edge)
    lines = [_label(graph, graph.root)]

    def visit(node: Node, prefix: str, seen: frozenset[Node]) -> None:
        kids = parents.get(node, [])
        for i, edge in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}[{edge.relation}] "
                         f"{_label(graph, edge.parent)}")
            if edge.parent not in seen:
                visit(edge.parent, prefix + ("    " if last else "│   "), seen | {edge.parent})

    visit(graph.root, "", frozenset({graph.root}))
    return "\n".join(lines)


def render_dot(graph: LineageGraph) -> str:
    """Graphviz: ``modelworks trace URI --format dot | dot -Tsvg > trace.svg``."""
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph lineage {", "  rankdir=LR;"]
    for node in graph.nodes:
        lines.append(f"  {q(str(node))} [label={q(_label(graph, node))}];")
    for edge in graph.edges:
        lines.append(f"  {q(str(edge.child))} -> {q(str(edge.parent))} "
                     f"[label={q(edge.relation)}];")
    lines.append("}")
    return "\n".join(lines)


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
