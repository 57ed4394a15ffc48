"""Deployment records and per-request routing: pure functions, no database.

``choose`` picks the model URI that answers one request — sticky per key (a stable hash of
the key), random by weight otherwise; ``shadows_of`` names the URIs that get a copy.
``deployments`` stores and changes these records.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..errors import ModelworksError

__all__ = [
    "AliasChange",
    "Deployment",
    "DeploymentDisabled",
    "DeploymentEvent",
    "DeploymentStatus",
    "Route",
    "choose",
    "shadows_of",
]

DeploymentStatus = Literal["active", "disabled"]


# --- records ---------------------------------------------------------------------------


class Route(BaseModel):
    """One entry of a traffic split: a canonical model URI and its share in percent."""

    model_config = ConfigDict(frozen=True)

    model: str
    weight: float


class AliasChange(BaseModel):
    """An alias a promotion moved (or a rollback moved back)."""

    model_config = ConfigDict(frozen=True)

    model: str
    alias: str
    previous_version: int
    version: int


class Deployment(BaseModel):
    """An endpoint: routes (main entry first), shadows, status and the fallback."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: DeploymentStatus
    routes: list[Route]
    shadows: list[str]
    fallback: str | None
    disabled_reason: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @property
    def main(self) -> Route:
        return self.routes[0]

    @property
    def canaries(self) -> list[Route]:
        """The routes besides the main entry that get traffic."""
        return [r for r in self.routes[1:] if r.weight > 0]


class DeploymentEvent(BaseModel):
    """One history entry: the action, who and why, and the spec it left in force."""

    model_config = ConfigDict(frozen=True)

    id: int
    deployment: str
    action: str
    status: DeploymentStatus
    routes: list[Route]
    shadows: list[str]
    fallback: str | None
    reason: str | None
    actor: str
    at: datetime
    alias_change: AliasChange | None = None
    undoes: int | None = None  # a rollback: the history id of the change it undid
    forced: bool = False


class DeploymentDisabled(ModelworksError):
    """The endpoint is switched off and has no fallback (the server answers 503)."""

    def __init__(self, name: str, reason: str | None) -> None:
        super().__init__(f"deployment {name!r} is disabled: {reason or 'no reason given'}")
        self.deployment = name
        self.reason = reason


# --- routing (pure; the server calls these per request) --------------------------------


def _point(name: str, key: str) -> float:
    """A stable point in [0, 100) for the key, salted with the deployment's name."""
    digest = hashlib.blake2b(f"{name}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * 100.0 / 2**64


def choose(deployment: Deployment, key: str | None = None,
           rng: random.Random | None = None) -> str:
    """The model URI that answers one request.

    With a ``key`` (a user or session id) the choice is sticky: the key's hash picks a point
    in [0, 100) and the routes cover that range in order, so raising a canary's share only
    moves keys onto the canary. Without one, the choice is random by weight.

    Raises:
        DeploymentDisabled: the deployment is disabled and has no fallback.
    """
    if deployment.status != "active":
        if deployment.fallback is not None:
            return deployment.fallback
        raise DeploymentDisabled(deployment.name, deployment.disabled_reason)
    if key is not None:
        point = _point(deployment.name, key)
    else:
        point = (rng.random() if rng is not None else random.random()) * 100.0
    total, chosen = 0.0, deployment.routes[0].model
    for route in deployment.routes:
        if route.weight <= 0:
            continue
        total += route.weight
        chosen = route.model  # the last route with traffic takes any rounding remainder
        if point < total:
            break
    return chosen


def shadows_of(deployment: Deployment) -> list[str]:
    """The URIs that get a copy of each request (none while the endpoint is disabled)."""
    return list(deployment.shadows) if deployment.status == "active" else []
