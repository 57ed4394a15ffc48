"""Typed records that services return and interfaces render (one to one with the REST layer)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer

__all__ = [
    "ArtifactEntry",
    "DatasetRecord",
    "DatasetUse",
    "DatasetVersion",
    "Experiment",
    "MetricPoint",
    "RunRecord",
    "RunStatus",
]

RunStatus = Literal["RUNNING", "FINISHED", "FAILED"]


def _json_float(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: render them as strings instead of invalid JSON."""
    if value is None or math.isfinite(value):
        return value
    return repr(value)


class Experiment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    created_at: datetime
    created_by: str
    run_count: int = 0


class MetricPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    value: float
    step: int
    timestamp: float

    @field_serializer("value")
    def _ser_value(self, value: float) -> float | str | None:
        return _json_float(value)


class ArtifactEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    size: int


class DatasetUse(BaseModel):
    """A dataset version a run read, and in which role (train, validation, ...)."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    version: int
    content_hash: str
    role: str


class RunRecord(BaseModel):
    """A run as recorded: identity, environment, params, tags and latest metrics."""

    model_config = ConfigDict(frozen=True)

    id: str
    experiment_id: int
    experiment: str
    parent_id: str | None
    name: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None
    actor: str
    error: str | None
    git_commit: str | None
    git_dirty: bool | None
    git_diff_hash: str | None
    python_version: str
    packages_hash: str
    host: str
    metric_count: int
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    artifacts: list[ArtifactEntry] = []
    datasets: list[DatasetUse] = []

    @field_serializer("metrics")
    def _ser_metrics(self, metrics: dict[str, float]) -> dict[str, float | str | None]:
        return {k: _json_float(v) for k, v in metrics.items()}

    @property
    def duration_seconds(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


class DatasetRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    created_at: datetime
    created_by: str
    latest_version: int | None = None
    version_count: int = 0


class DatasetVersion(BaseModel):
    """One immutable, content-addressed version of a dataset."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    version: int
    content_hash: str
    artifact_sha256: str
    columns: dict[str, str]
    row_count: int
    profile: dict[str, Any]
    source: str | None
    created_at: datetime
    created_by: str

    @property
    def uri(self) -> str:
        return f"dataset:{self.name}:{self.version}"
