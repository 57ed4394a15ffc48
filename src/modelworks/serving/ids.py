"""Request and prediction ids.

A request id is 12 hex digits of milliseconds since the epoch followed by 14 random hex
digits: ids sort by time and carry it, so a prediction id (``REQUEST_ID:ROW``) can be found
in the day-partitioned log without an index of every prediction.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime

from ..errors import InvalidInput

__all__ = ["new_request_id", "parse_prediction_id", "prediction_id", "request_time"]

_REQUEST = re.compile(r"^[0-9a-f]{26}$")


def new_request_id() -> str:
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(7).hex()}"


def prediction_id(request_id: str, row: int) -> str:
    return f"{request_id}:{row}"


def request_time(request_id: str) -> datetime:
    """When the request arrived (millisecond precision, UTC)."""
    if not _REQUEST.match(request_id):
        raise InvalidInput(f"not a request id: {request_id!r} (26 hex digits)",
                           field="request_id")
    return datetime.fromtimestamp(int(request_id[:12], 16) / 1000, tz=UTC)


def parse_prediction_id(value: str) -> tuple[str, int]:
    """(request id, row) from ``REQUEST_ID:ROW``; InvalidInput naming the field otherwise."""
    request, sep, row = value.partition(":")
    if not sep or not row.isdigit() or not _REQUEST.match(request):
        raise InvalidInput(f"not a prediction id: {value!r} (REQUEST_ID:ROW)",
                           field="prediction_id")
    return request, int(row)
