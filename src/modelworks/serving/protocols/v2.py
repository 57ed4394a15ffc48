"""Open Inference Protocol v2 (REST), the one KServe, Seldon MLServer and Triton speak.

``POST /v2/models/{name}[/versions/{v}]/infer`` takes either one input per column (tabular,
``parameters.content_type: "pd"``, each input of shape ``[n]`` or ``[n, 1]``) or a single 2-D
tensor ``[n, k]`` whose columns are the signature's, in order. The reply has an output
``predict`` (and ``predict_proba`` when the request lists it in ``outputs``). Also: server and
model metadata, model readiness, ``/v2/health/live`` and ``/v2/health/ready``. Errors are
``{"error": ...}``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...errors import InvalidInput
from ...registry.signatures import Signature
from ..app import (
    ServerState,
    decode_json,
    error_response,
    json_response,
    predict_and_log,
    read_body,
)
from ..ids import new_request_id
from ..model_cache import ServedModel

__all__ = ["router"]

_KIND_TO_V2 = {"integer": "INT64", "float": "FP64", "boolean": "BOOL", "string": "BYTES",
               "category": "BYTES", "datetime": "BYTES"}
_DATATYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
              "FP16", "FP32", "FP64", "BYTES"}


def _error(status: int, message: str, field: str | None) -> dict[str, Any]:
    return {"error": message}


def _flat(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [v for row in data for v in (_flat(row) if isinstance(row, list) else [row])]
    if not isinstance(data, list):
        raise InvalidInput("data must be a list (flat, row-major, or nested)", field="data")
    return data


def _tensor(item: Any, i: int) -> tuple[str, list[int], list[Any]]:
    where = f"inputs[{i}]"
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object with name, shape, datatype, data",
                           field=where)
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}.name must be a non-empty string", field=f"{where}.name")
    if (not isinstance(shape, list) or not shape or len(shape) > 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                       for d in shape)):
        raise InvalidInput(f"{where}.shape must be [n] or [n, k] with non-negative integers",
                           field=f"{where}.shape")
    if datatype not in _DATATYPES:
        raise InvalidInput(f"{where}.datatype must be one of {', '.join(sorted(_DATATYPES))}",
                           field=f"{where}.datatype")
    data = _flat(item.get("data"))
    if len(data) != math.prod(shape):
        raise InvalidInput(f"{where}.data holds {len(data)} values; shape {shape} needs "
                           f"{math.prod(shape)}", field=f"{where}.data")
    return name, shape, data


def rows_from_infer(body: Any, signature: Signature | None) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) \
            or not body["inputs"]:
        raise InvalidInput("the body must be an object with a non-empty inputs list",
                           field="inputs")
    tensors = [_tensor(item, i) for i, item in enumerate(body["inputs"])]
    names = [c.name for c in signature.inputs] if signature else []
    if len(tensors) == 1 and len(tensors[0][1]) == 2 and tensors[0][0] not in names:
        _, (n, k), data = tensors[0]
        if not names:
            raise InvalidInput("a 2-D tensor needs a model signature to name its columns",
                               field="inputs[0]")
        if k != len(names):
            raise InvalidInput(f"inputs[0] has {k} columns; the model takes {len(names)} "
                               f"({', '.join(names[:8])}{'…' if len(names) > 8 else ''})",
                               field="inputs[0].shape")
        return [dict(zip(names, data[r * k:(r + 1) * k], strict=True)) for r in range(n)]
    lengths = set()
    for i, (_, shape, _) in enumerate(tensors):
        if len(shape) == 2 and shape[1] != 1:
            raise InvalidInput(f"inputs[{i}]: a column input has shape [n] or [n, 1]",
                               field=f"inputs[{i}].shape")
        lengths.add(shape[0])
    if len(lengths) != 1:
        raise InvalidInput(f"column inputs have different lengths ({sorted(lengths)})",
                           field="inputs")
    n = lengths.pop()
    if n == 0:
        raise InvalidInput("inputs hold no rows: send at least one", field="inputs")
    columns = [(name, data) for name, _, data in tensors]
    return [{name: data[r] for name, data in columns} for r in range(n)]


def _datatype(values: list[Any]) -> str:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    if isinstance(sample, float):
        return "FP64"
    return "BYTES"


def _metadata(served: ServedModel, versions: list[str]) -> dict[str, Any]:
    inputs = [{"name": c.name, "datatype": _KIND_TO_V2[c.dtype], "shape": [-1]}
              for c in (served.signature.inputs if served.signature else [])]
    outputs = [{"name": "predict", "datatype": "BYTES" if served.classes and isinstance(
        served.classes[0], str) else ("INT64" if served.classes else "FP64"), "shape": [-1]}]
    if served.has_proba:
        outputs.append({"name": "predict_proba", "datatype": "FP64",
                        "shape": [-1, len(served.classes or [])]})
    return {"name": served.name, "versions": versions, "platform": f"modelworks-"
            f"{served.version.format}", "inputs": inputs, "outputs": outputs,
            "parameters": {"content_type": "pd", "version": str(served.number)}}


def router(state: ServerState) -> APIRouter:
    api = APIRouter(tags=["v2"])

    async def _served(name: str, version: int | None) -> ServedModel:
        return await state.served(state.ref_for(name, version))

    async def _infer(name: str, version: int | None, request: Request) -> Response:
        started = time.perf_counter()
        request_id = new_request_id()
        model_label, version_label = name, "?"
        try:
            body = decode_json(await read_body(request, state))
            served = await _served(name, version)
            version_label = str(served.number)
            rows = rows_from_infer(body, served.signature)
            wanted = {o.get("name") for o in body.get("outputs") or [] if isinstance(o, dict)}
            proba = "predict_proba" in wanted
            predictions, probabilities = await predict_and_log(
                state, served, rows, proba=proba, request_id=request_id, endpoint=None,
                started=started)
            outputs = [{"name": "predict", "shape": [len(predictions)],
                        "datatype": _datatype(predictions), "data": predictions}]
            if probabilities is not None:
                width = len(probabilities[0]) if probabilities else 0
                outputs.append({"name": "predict_proba", "shape": [len(probabilities), width],
                                "datatype": "FP64",
                                "data": [v for row in probabilities for v in row]})
            reply = {"model_name": served.name, "model_version": str(served.number),
                     "id": body.get("id") if isinstance(body.get("id"), str) else request_id,
                     "parameters": {"request_id": request_id}, "outputs": outputs}
            state.metrics.observe("v2", model_label, version_label, 200,
                                  time.perf_counter() - started)
            return json_response(reply)
        except Exception as exc:
            response = error_response(exc, request_id, _error)
            state.metrics.observe("v2", model_label, version_label, response.status_code,
                                  time.perf_counter() - started)
            return response

    infer_body = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "shape": {"type": "array",
                                                      "items": {"type": "integer"}},
                "datatype": {"type": "string"}, "data": {"type": "array"}}}},
            "outputs": {"type": "array", "items": {"type": "object"}}}}}}}}

    @api.post("/v2/models/{name}/infer", openapi_extra=infer_body)
    async def infer(name: str, request: Request) -> Response:
        return await _infer(name, None, request)

    @api.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=infer_body)
    async def infer_version(name: str, version: int, request: Request) -> Response:
        if version < 1:
            return json_response({"error": "version must be a positive integer"}, 400)
        return await _infer(name, version, request)

    async def _meta(name: str, version: int | None) -> Response:
        try:
            served = await _served(name, version)
            from ...registry.models import list_versions

            with state.workspace.db.read() as conn:
                versions = [str(v.version) for v in list_versions(conn, served.name)
                            if v.status == "registered"]
            return json_response(_metadata(served, versions))
        except Exception as exc:
            return error_response(exc, new_request_id(), _error)

    @api.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        return await _meta(name, None)

    @api.get("/v2/models/{name}/versions/{version}")
    async def version_metadata(name: str, version: int) -> Response:
        return await _meta(name, version)

    async def _ready(name: str, version: int | None) -> Response:
        try:
            served = await _served(name, version)
            return json_response({"name": served.name, "version": str(served.number),
                                  "ready": True})
        except Exception as exc:
            return error_response(exc, new_request_id(), _error)

    @api.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        return await _ready(name, None)

    @api.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(name: str, version: int) -> Response:
        return await _ready(name, version)

    @api.get("/v2/health/live")
    async def live() -> Response:
        return json_response({"live": True})

    @api.get("/v2/health/ready")
    async def ready() -> Response:
        return json_response({"ready": state.ready}, 200 if state.ready else 503)

    @api.get("/v2")
    async def server_metadata() -> Response:
        from ... import __version__

        return json_response({"name": "modelworks", "version": __version__, "extensions": []})

    return api
