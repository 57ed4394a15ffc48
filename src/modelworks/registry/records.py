"""Registry records: registered models, versions and alias moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["AliasMove", "ModelVersion", "RegisteredModel", "RiskTier", "VersionStatus"]

RiskTier = Literal["low", "medium", "high"]
VersionStatus = Literal["registered", "archived"]


class RegisteredModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None
    owner: str
    risk_tier: RiskTier
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    created_at: datetime
    created_by: str


class ModelVersion(BaseModel):
    """One immutable, content-addressed version of a registered model."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    run_id: str | None
    sha256: str
    size: int
    format: str
    library: str | None
    library_version: str | None
    allow_pickle: bool
    signature: dict[str, Any] | None
    input_example: list[dict[str, Any]] | None
    description: str | None
    status: VersionStatus
    aliases: list[str]
    created_at: datetime
    created_by: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class AliasMove(BaseModel):
    """One entry of an alias's history: it moved to ``version`` (None: deleted)."""

    model_config = ConfigDict(frozen=True)

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    reason: str | None
    forced: bool
    actor: str
    at: datetime
