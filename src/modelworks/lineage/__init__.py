"""Lineage: edges written by every service, and the walk over them."""

from __future__ import annotations

from .edges import LineageEdge, Node, add_edge, edges_of
from .trace import LineageGraph, walk

__all__ = ["LineageEdge", "LineageGraph", "Node", "add_edge", "edges_of", "walk"]
