"""Core storage: the metadata database (SQLAlchemy + Alembic) and the artifact store (fsspec).

It knows tables and bytes, not business rules.
"""

from __future__ import annotations

from .artifacts import ArtifactStore
from .database import Database

__all__ = ["ArtifactStore", "Database"]
