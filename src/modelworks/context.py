"""What every service call needs: the stores and the acting identity."""

from __future__ import annotations

from dataclasses import dataclass

from .store.artifacts import ArtifactStore
from .store.database import Database

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """The metadata database, the artifact store and who is acting."""

    db: Database
    artifacts: ArtifactStore
    actor: str
