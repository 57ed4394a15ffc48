"""Workspace-wide records: the workspace itself and role bindings."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, UniqueConstraint

from ._types import UTCDateTime, metadata

__all__ = ["role_bindings", "workspace_info"]

# One row: who created the workspace and when. The creator is its first admin.
workspace_info = Table(
    "mw_workspace",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
)

role_bindings = Table(
    "mw_role_bindings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal", String(256), nullable=False),
    Column("role", String(64), nullable=False),
    Column("granted_by", String(256), nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
    UniqueConstraint("principal", "role"),
)
