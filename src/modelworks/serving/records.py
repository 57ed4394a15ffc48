"""What the prediction log holds: one record per predicted row."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["PredictionRecord"]


class PredictionRecord(BaseModel):
    """One row's prediction, as served (or as a shadow answered it: never returned).

    ``ts`` is epoch seconds (float) to keep the hot path free of datetime objects;
    ``inputs`` already has sensitive columns removed or tokenised.
    """

    model_config = ConfigDict(frozen=True)

    prediction_id: str  # REQUEST_ID:ROW
    request_id: str
    row: int
    ts: float
    endpoint: str | None
    model: str
    version: int
    inputs: dict[str, Any]
    output: Any
    proba: list[float] | None = None
    latency_ms: float
    shadow: bool = False
    # Set on the one row logged for a request that raised inside the model (the exception's
    # type; ``output`` is None): what canary analysis counts as the version's errors.
    error: str | None = None
