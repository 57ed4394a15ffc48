"""MLflow's scoring-server protocol: ``POST /invocations`` (JSON or CSV), ``/ping``,
``/health``, ``/version`` — so MLflow clients work unchanged against a one-model server.

Requests: ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs`` as JSON, or
CSV with a header row. Replies: ``{"predictions": [...]}``. Errors: MLflow's shape,
``{"error_code": "BAD_REQUEST", "message": ...}`` (``RESOURCE_DOES_NOT_EXIST`` for 404).
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...errors import InvalidInput, NotFound
from ...registry.signatures import Signature
from ..app import (
    ServerState,
    UnsupportedMediaType,
    decode_json,
    error_response,
    json_response,
    predict_and_log,
    read_body,
)
from ..ids import new_request_id
from ..inputs import parse_payload

__all__ = ["router"]

_CODES = {404: "RESOURCE_DOES_NOT_EXIST", 500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE"}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _error(status: int, message: str, field: str | None) -> dict[str, Any]:
    return {"error_code": _CODES.get(status, "BAD_REQUEST"), "message": message}


def _cell(text: str, kind: str, column: str, row: int) -> Any:
    if text == "":
        return None
    try:
        if kind == "integer":
            value = float(text)
            return int(value) if value == int(value) else value
        if kind == "float":
            return float(text)
    except ValueError:
        raise InvalidInput(f"CSV row {row}: column {column!r} expected {kind}, got text",
                           field=column) from None
    if kind == "boolean":
        low = text.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise InvalidInput(f"CSV row {row}: column {column!r} expected boolean", field=column)
    return text


def csv_rows(body: bytes, signature: Signature | None) -> list[dict[str, Any]]:
    """Rows from CSV with a header; cells typed by the signature (CSV carries no types)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV body must be UTF-8", field="body") from None
    try:
        return _parse_csv(text, signature)
    except csv.Error as exc:  # e.g. a stray carriage return inside a field
        raise InvalidInput(f"the CSV body is malformed: {exc}", field="body") from None


def _parse_csv(text: str, signature: Signature | None) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("the CSV body is empty: send a header and rows", field="body") from None
    kinds = {c.name: c.dtype for c in signature.inputs} if signature else {}
    rows = []
    for i, cells in enumerate(reader, start=1):
        if not cells:
            continue
        if len(cells) != len(header):
            raise InvalidInput(f"CSV row {i} has {len(cells)} cells, the header {len(header)}",
                               field=f"row {i}")
        rows.append({name: _cell(cell, kinds.get(name, "string"), name, i)
                     for name, cell in zip(header, cells, strict=True)})
    if not rows:
        raise InvalidInput("the CSV body has a header but no rows", field="body")
    return rows


def router(state: ServerState) -> APIRouter:
    api = APIRouter(tags=["mlflow"])

    def _only_model() -> Any:
        if len(state.pinned) != 1:
            raise NotFound("/invocations serves a server started with exactly one model "
                           f"(--models NAME@ALIAS); this one has {len(state.pinned)}: use "
                           "/v1/models/{name}/predict")
        return state.pinned[0]

    @api.post("/invocations", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "properties": {
            "dataframe_split": {"type": "object"}, "dataframe_records": {"type": "array"},
            "instances": {"type": "array"}, "inputs": {}}}},
        "text/csv": {"schema": {"type": "string"}}}}})
    async def invocations(request: Request) -> Response:
        """MLflow's scoring endpoint (the server's one model)."""
        started = time.perf_counter()
        request_id = new_request_id()
        try:
            ref = _only_model()
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in ("application/json", "text/csv"):
                raise UnsupportedMediaType(
                    "this predictor takes application/json or text/csv, got "
                    f"{ctype[:60] or 'none'!r}")
            body = await read_body(request, state, json_only=False)
            served = await state.served(ref)
            if ctype == "text/csv":
                rows = csv_rows(body, served.signature)
            else:
                rows = parse_payload(decode_json(body), served.signature)
            predictions, _ = await predict_and_log(state, served, rows, proba=False,
                                                   request_id=request_id, endpoint=None,
                                                   started=started)
            state.metrics.observe("invocations", served.name, str(served.number), 200,
                                  time.perf_counter() - started)
            return json_response({"predictions": predictions})
        except Exception as exc:
            response = error_response(exc, request_id, _error)
            state.metrics.observe("invocations", "?", "?", response.status_code,
                                  time.perf_counter() - started)
            return response

    @api.get("/ping")
    async def ping() -> Response:
        return Response("\n", media_type="application/json",
                        status_code=200 if state.ready else 503)

    @api.get("/health")
    async def health() -> Response:
        return Response("\n", media_type="application/json",
                        status_code=200 if state.ready else 503)

    @api.get("/version")
    async def version() -> Response:
        from ... import __version__

        return Response(__version__, media_type="text/plain")

    return api
