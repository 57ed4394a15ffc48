"""Lineage: edges written by every service, and the walk over them."""

from __future__ import annotations

from .edges import LineageEdge, Node, add_edge, add_new_edges, edges_of
from .trace import LineageGraph, render_dot, render_tree, trace, walk

__all__ = [
    "LineageEdge", "LineageGraph", "Node", "add_edge", "add_new_edges", "edges_of", "render_dot",
    "render_tree", "trace", "walk",
]
