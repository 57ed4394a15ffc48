"""Lineage edges: "child was made from parent"."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, UniqueConstraint

from ._types import UTCDateTime, metadata

__all__ = ["lineage_edges"]

lineage_edges = Table(
    "mw_lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("child_type", String(64), nullable=False),
    Column("child_id", String(256), nullable=False),
    Column("parent_type", String(64), nullable=False),
    Column("parent_id", String(256), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint(
        "child_type", "child_id", "parent_type", "parent_id", "relation", name="uq_mw_lineage_edge"
    ),
    Index("ix_mw_lineage_edges_parent", "parent_type", "parent_id"),
)
