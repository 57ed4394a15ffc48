"""The prediction server: many models per process, three protocols, one hot path.

``create_app(workspace, models=...)`` builds a FastAPI app; ``modelworks serve`` runs it under
uvicorn. The request path is deliberately short: read the body (size-capped), decode it with
orjson, find the loaded version (an LRU cache; aliases re-resolved every few seconds), check
the rows against the signature (plain Python for numeric models, no DataFrame), predict, append
the rows to the prediction journal with one ``write()``, answer. Small requests run on the
event loop (a thread hop costs more than the prediction); loads and large batches run in the
thread pool.

Errors map per protocol (``protocols/``): ours answer ``{"error": ..., "field": ...}``; v2
routes ``{"error": ...}``; ``/invocations`` MLflow's ``{"error_code", "message"}``. A client's
mistake is a 4xx naming the field; anything else is a 500 carrying only the request id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidInput, ModelworksError, NotFound, StoreUnavailable
from ..registry.uri import ModelRef, parse_model_uri, validate_model_name
from .ids import new_request_id
from .metrics import ServingMetrics
from .model_cache import ModelCache, ServedModel
from .refresh import Refreshing

__all__ = ["BodyTooLarge", "ServerState", "UnsupportedMediaType", "create_app", "decode_json",
           "error_response", "json_response", "log_error", "predict_and_log", "predict_rows",
           "read_body", "status_of"]

log = logging.getLogger("modelworks.serving")

_INLINE_ROWS = 256  # larger batches predict in the thread pool, keeping the loop responsive
_JSON = "application/json"


class BodyTooLarge(ModelworksError):
    """The request body exceeds the server's limit (413)."""


class UnsupportedMediaType(ModelworksError):
    """The request's content type is not one the route takes (415)."""


class Malformed(InvalidInput):
    """The body is not valid JSON (400)."""


@dataclass
class ServerState:
    """What one worker process holds."""

    workspace: Any
    cache: ModelCache
    metrics: ServingMetrics
    pinned: list[ModelRef]
    max_body: int
    log: Any = None  # PredictionLog, when prediction logging is on
    ready: bool = False
    ttl: float = 2.0
    # Log class probabilities the client did not ask for (serve_log_probabilities), so
    # monitoring can estimate performance before labels arrive.
    log_proba: bool = True
    proba_failed: set[tuple[str, int]] = field(default_factory=set)
    _deployments: Refreshing[Any] = field(default_factory=lambda: Refreshing(2.0))
    pinned_by_name: dict[str, ModelRef] = field(default_factory=dict)

    # -- resolution ---------------------------------------------------------------------

    def ref_for(self, name: str, version: int | None = None) -> ModelRef:
        """``name``, ``name@alias`` or a version: a bare name is the pinned ref, else latest."""
        if version is not None:
            validate_model_name(name)
            return ModelRef(name=name, version=version)
        if "@" in name:
            return parse_model_uri(f"models:/{name}")
        validate_model_name(name)
        pinned = self.pinned_by_name.get(name)
        if pinned is not None:
            return pinned
        return ModelRef(name=name, version=self.cache.latest_of(name))

    def deployment(self, name: str) -> Any:
        def fetch() -> Any:
            from .deployments import get_deployment

            with self.workspace.db.read() as conn:
                return get_deployment(conn, name)

        return self._deployments.get(name, fetch)

    async def served(self, ref: ModelRef) -> ServedModel:
        cached = self.cache.cached(ref)  # a dict lookup, or a DB read when an alias expired
        if cached is not None:
            return cached
        return await run_in_threadpool(self.cache.get, ref)


# -- the hot path ---------------------------------------------------------------------------


def decode_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if any(token in body for token in (b"NaN", b"Infinity")):
            raise Malformed("NaN and Infinity are not valid JSON: send null for a missing "
                            "value", field="body") from exc
        raise Malformed(f"the body is not valid JSON ({str(exc).split(':')[0]})",
                        field="body") from exc


def predict_rows(served: ServedModel, rows: list[dict[str, Any]], *, proba: bool,
                 log_proba: bool = False) -> tuple[list[Any], list[Any] | None]:
    """Check and predict (raises InvalidInput for a signature mismatch).

    ``log_proba``: compute the probabilities even though the client did not ask (for the
    log); if the model's ``predict_proba`` fails, they are left out, never the answer.
    """
    data = served.inputs(rows)
    if proba or not log_proba:
        return served.predict(data, proba=proba)
    try:
        return served.predict(data, proba=True)
    except Exception:
        return served.predict(data, proba=False)


def _log_proba(state: ServerState, served: ServedModel, proba: bool) -> bool:
    """Whether to compute probabilities only for the log."""
    return (not proba and state.log_proba and state.log is not None and served.has_proba
            and (served.name, served.number) not in state.proba_failed)


def _proba_failed(state: ServerState, served: ServedModel) -> None:
    state.proba_failed.add((served.name, served.number))
    log.warning("%s: predict_proba failed, so its predictions are logged without class "
                "probabilities from now on (no performance estimate)", served.version.uri)


def log_rows(state: ServerState, served: ServedModel, rows: list[dict[str, Any]],
             predictions: list[Any], probabilities: list[Any] | None, *, request_id: str,
             endpoint: str | None, started: float, shadow: bool = False) -> None:
    """Append the request's rows to the journal — before the response is sent."""
    if state.log is None:
        return
    now = time.time()
    latency = (time.perf_counter() - started) * 1000
    filt = served.log_filter
    try:
        _append(state, served, rows, predictions, probabilities, request_id, endpoint, now,
                latency, shadow, filt)
    except (OSError, RuntimeError) as exc:  # not logged means not answered
        raise StoreUnavailable(f"the prediction log cannot be written ({type(exc).__name__}):"
                               " the prediction was not served") from exc


def _append(state: ServerState, served: ServedModel, rows: list[dict[str, Any]],
            predictions: list[Any], probabilities: list[Any] | None, request_id: str,
            endpoint: str | None, now: float, latency: float, shadow: bool,
            filt: Any) -> None:
    state.log.append_rows([{
        "prediction_id": f"{request_id}:{i}", "request_id": request_id, "row": i, "ts": now,
        "endpoint": endpoint, "model": served.name, "version": served.number,
        "inputs": filt(row) if filt is not None else row, "output": predictions[i],
        "proba": probabilities[i] if probabilities is not None else None,
        "latency_ms": latency, "shadow": shadow,
    } for i, row in enumerate(rows)])


def log_error(state: ServerState, served: ServedModel, exc: BaseException, *,
              request_id: str, endpoint: str | None, started: float,
              shadow: bool = False) -> None:
    """One row with ``error`` for a request the model failed on, so canary analysis can
    count each version's errors. A client's mistake (InvalidInput, any ModelworksError) is
    not the model's; failures are rare, so answered requests pay nothing for this."""
    if state.log is None or isinstance(exc, ModelworksError):
        return
    try:
        state.log.append_rows([{
            "prediction_id": f"{request_id}:0", "request_id": request_id, "row": 0,
            "ts": time.time(), "endpoint": endpoint, "model": served.name,
            "version": served.number, "inputs": {}, "output": None, "proba": None,
            "latency_ms": (time.perf_counter() - started) * 1000, "shadow": shadow,
            "error": type(exc).__name__}])
    except (OSError, RuntimeError):  # the request fails anyway: keep its own error
        log.warning("request %s: its failure could not be logged", request_id, exc_info=True)


async def predict_and_log(state: ServerState, served: ServedModel, rows: list[dict[str, Any]],
                          *, proba: bool, request_id: str, endpoint: str | None,
                          started: float) -> tuple[list[Any], list[Any] | None]:
    """Predict (inline when small) and journal the rows; what every protocol calls."""
    extra = _log_proba(state, served, proba)
    try:
        if len(rows) <= _INLINE_ROWS:
            predictions, probabilities = predict_rows(served, rows, proba=proba,
                                                      log_proba=extra)
        else:
            predictions, probabilities = await run_in_threadpool(
                predict_rows, served, rows, proba=proba, log_proba=extra)
    except Exception as exc:
        log_error(state, served, exc, request_id=request_id, endpoint=endpoint,
                  started=started)
        raise
    if extra and probabilities is None:
        _proba_failed(state, served)
    log_rows(state, served, rows, predictions, probabilities, request_id=request_id,
             endpoint=endpoint, started=started)
    return predictions, probabilities if proba else None


def wants_proba(request: Request, body: Any) -> bool:
    flag = request.query_params.get("probabilities")
    if flag is not None:
        return flag.lower() in ("1", "true", "yes")
    return isinstance(body, dict) and body.get("probabilities") is True


async def read_body(request: Request, state: ServerState, *, json_only: bool = True) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > state.max_body:
        raise BodyTooLarge(f"the body is {int(declared)} bytes; this server takes at most "
                           f"{state.max_body} (MODELWORKS_SERVE_MAX_BODY_BYTES)")
    if json_only:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != _JSON:
            raise UnsupportedMediaType(f"content-type must be {_JSON}, got "
                                       f"{ctype[:60] or 'none'!r}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > state.max_body:
            raise BodyTooLarge(f"the body exceeds {state.max_body} bytes "
                               "(MODELWORKS_SERVE_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(exc: BaseException) -> int:
    from .deployments import DeploymentDisabled

    if isinstance(exc, Malformed):
        return 400
    if isinstance(exc, InvalidInput):
        return 400 if exc.field in ("body",) else 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, BodyTooLarge):
        return 413
    if isinstance(exc, UnsupportedMediaType):
        return 415
    if isinstance(exc, DeploymentDisabled | StoreUnavailable):
        return 503
    if isinstance(exc, ModelworksError):
        return 409
    return 500


def json_response(body: Any, status: int = 200, background: BackgroundTask | None = None
                  ) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type=_JSON, background=background)


def error_response(exc: BaseException, request_id: str, render: Callable[[int, str, str | None],
                   Any]) -> Response:
    status = status_of(exc)
    if status == 500:
        log.exception("request %s failed", request_id)
        message = f"internal error (request {request_id}); the server log has the details"
    else:
        message = str(exc)
    field_name = getattr(exc, "field", None)
    return json_response(render(status, message, field_name), status)


def _native_error(status: int, message: str, field_name: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if field_name:
        body["field"] = field_name
    return body


async def answer(state: ServerState, request: Request, ref_of: Callable[[], ModelRef], *,
                 route: str, endpoint: str | None = None, shadows: Sequence[str] = ()
                 ) -> Response:
    """The native protocol's predict: body → rows → predictions → log → reply."""
    started = time.perf_counter()
    request_id = new_request_id()
    model_label, version_label = "?", "?"
    try:
        body = decode_json(await read_body(request, state))
        ref = ref_of()
        model_label = ref.name
        served = await state.served(ref)
        version_label = str(served.number)
        rows_ = _rows(body, served)
        predictions, probabilities = await predict_and_log(
            state, served, rows_, proba=wants_proba(request, body), request_id=request_id,
            endpoint=endpoint, started=started)
        reply: dict[str, Any] = {"predictions": predictions, "model": served.name,
                                 "version": served.number, "request_id": request_id}
        if probabilities is not None:
            reply["probabilities"] = probabilities
            reply["classes"] = served.classes
        task = BackgroundTask(run_shadows, state, list(shadows), rows_, request_id,
                              endpoint) if shadows else None
        state.metrics.observe(route, model_label, version_label, 200,
                              time.perf_counter() - started)
        return json_response(reply, background=task)
    except Exception as exc:  # every error leaves as a protocol answer, never a traceback
        response = error_response(exc, request_id, _native_error)
        state.metrics.observe(route, model_label, version_label, response.status_code,
                              time.perf_counter() - started)
        return response


def _rows(body: Any, served: ServedModel) -> list[dict[str, Any]]:
    from .inputs import parse_payload

    return parse_payload(body, served.signature)


async def run_shadows(state: ServerState, shadows: list[str], rows: list[dict[str, Any]],
                      request_id: str, endpoint: str | None) -> None:
    """Copies for shadow versions: answers logged (shadow=True), never returned."""
    for uri in shadows:
        started = time.perf_counter()
        served: ServedModel | None = None
        try:
            served = await state.served(parse_model_uri(uri))
            extra = _log_proba(state, served, False)
            predictions, probabilities = await run_in_threadpool(
                predict_rows, served, rows, proba=False, log_proba=extra)
            if extra and probabilities is None:
                _proba_failed(state, served)
            log_rows(state, served, rows, predictions, probabilities, request_id=request_id,
                     endpoint=endpoint, started=started, shadow=True)
        except Exception as exc:  # a failing shadow must never touch the live answer
            log.warning("shadow %s failed for request %s", uri, request_id, exc_info=True)
            if served is not None:
                log_error(state, served, exc, request_id=request_id, endpoint=endpoint,
                          started=started, shadow=True)


# -- the app --------------------------------------------------------------------------------

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {_JSON: {"schema": {
            "type": "object",
            "description": "Exactly one of instances, dataframe_split, dataframe_records, "
                           "inputs; set probabilities to true for class probabilities.",
            "properties": {
                "instances": {"type": "array", "items": {"type": "object"}},
                "dataframe_records": {"type": "array", "items": {"type": "object"}},
                "dataframe_split": {"type": "object", "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}}}},
                "inputs": {"type": "object"},
                "probabilities": {"type": "boolean"},
            },
        }}},
    },
}


def create_app(workspace: Any, *, models: Sequence[str] = (), journal_dir: Any = None,
               log_predictions: bool = True, title: str = "modelworks serving") -> FastAPI:
    """The serving app over an open Workspace; ``models`` are loaded before it is ready."""
    settings = workspace.settings
    pinned = [_pin(m) for m in models]

    def gauges() -> dict[str, float]:
        stats = state.cache.stats()
        out = {"model_cache_models": float(stats.loaded), "model_cache_bytes": float(stats.bytes),
               "model_cache_budget_bytes": float(stats.budget_bytes),
               "model_loads_total": float(stats.loads),
               "model_evictions_total": float(stats.evictions)}
        if state.log is not None:
            out["prediction_log_lag_records"] = float(state.log.lag_records)
            out["prediction_log_lag_seconds"] = float(state.log.lag_seconds)
        return out

    def log_filter(version: Any) -> Any:
        from .prediction_log import log_filter as make

        return make(workspace.ctx, version.name, version.version, settings=settings)

    cache = ModelCache(workspace.ctx, budget_bytes=int(settings.serve_memory_budget_mb * 2**20),
                       alias_ttl=settings.serve_alias_refresh_seconds,
                       log_filter=log_filter if log_predictions else None)
    state = ServerState(workspace=workspace, cache=cache, metrics=ServingMetrics(gauges),
                        pinned=pinned, max_body=settings.serve_max_body_bytes,
                        ttl=settings.serve_alias_refresh_seconds,
                        log_proba=settings.serve_log_probabilities,
                        pinned_by_name={r.name: r for r in pinned},
                        # never stale beyond the interval: `deploy disable` must bite at once
                        _deployments=Refreshing(settings.serve_alias_refresh_seconds,
                                                max_stale=settings.serve_alias_refresh_seconds))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if log_predictions:
            from .prediction_log import PredictionLog, default_journal_dir

            directory = journal_dir or default_journal_dir(workspace.location, settings)
            assert directory is not None  # required=True raises instead of returning None
            state.log = await run_in_threadpool(
                PredictionLog, workspace.ctx, directory,
                fsync_seconds=settings.prediction_log_fsync_seconds,
                compact_seconds=settings.prediction_log_compact_seconds,
                compact_in_process=True)
        for ref in pinned:
            await run_in_threadpool(cache.get, ref)
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            if state.log is not None:
                await run_in_threadpool(state.log.close)

    app = FastAPI(title=title, version=_version(), lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None)
    app.state.serving = state

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:  # pragma: no cover
        return error_response(exc, new_request_id(), _native_error)

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def _bad_params(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("path", "query"))
        return json_response({"error": f"{where or 'request'}: {first.get('msg', 'invalid')}",
                              "field": where or None}, 422)

    @app.post("/v1/models/{name}/predict", openapi_extra=_PREDICT_BODY)
    async def predict_model(name: str, request: Request) -> Response:
        """Predict with NAME (pinned or latest version) or NAME@ALIAS."""
        return await answer(state, request, lambda: state.ref_for(name), route="model")

    @app.post("/v1/models/{name}/versions/{version}/predict", openapi_extra=_PREDICT_BODY)
    async def predict_version(name: str, version: int, request: Request) -> Response:
        """Predict with one version of NAME."""
        if version < 1:
            return json_response({"error": "version must be a positive integer",
                                  "field": "version"}, 422)
        return await answer(state, request, lambda: state.ref_for(name, version),
                            route="version")

    @app.post("/v1/endpoints/{endpoint}/predict", openapi_extra=_PREDICT_BODY)
    async def predict_endpoint(endpoint: str, request: Request) -> Response:
        """Predict through a deployment's traffic split; shadows get a copy, never answer.

        Send ``X-Routing-Key`` to pin a caller to the same route (sticky)."""
        try:
            deployment = state.deployment(endpoint)
            from .deployments import choose, shadows_of

            uri = choose(deployment, request.headers.get("x-routing-key"))
            shadows = shadows_of(deployment) if deployment.status == "active" else []
        except Exception as exc:
            return error_response(exc, new_request_id(), _native_error)
        return await answer(state, request, lambda: parse_model_uri(uri), route="endpoint",
                            endpoint=endpoint, shadows=shadows)

    @app.post("/v1/feedback", openapi_extra={"requestBody": {"required": True, "content": {
        _JSON: {"schema": {"type": "object", "properties": {
            "prediction_id": {"type": "string"}, "label": {},
            "feedback": {"type": "array", "items": {"type": "object"}}}}}}}})
    async def post_feedback(request: Request) -> Response:
        """Ground-truth labels: {"prediction_id", "label"} or {"feedback": [...]}."""
        request_id = new_request_id()
        try:
            body = decode_json(await read_body(request, state))
            if isinstance(body, dict) and "feedback" in body:
                items = body["feedback"]
                if not isinstance(items, list) or not items:
                    raise InvalidInput("feedback must be a non-empty list of "
                                       '{"prediction_id", "label"}', field="feedback")
            elif isinstance(body, dict):
                items = [body]
            else:
                raise InvalidInput('the body must be {"prediction_id": ..., "label": ...} or '
                                   '{"feedback": [...]}', field="body")
            from .feedback import record_feedback

            count = await run_in_threadpool(record_feedback, workspace.ctx, items)
            return json_response({"recorded": count})
        except Exception as exc:
            return error_response(exc, request_id, _native_error)

    @app.get("/v1/health/live")
    async def live() -> Response:
        return json_response({"status": "live"})

    @app.get("/v1/health/ready")
    async def ready() -> Response:
        if not state.ready:
            return json_response({"status": "loading", "error": "pinned models are loading"},
                                 503)
        return json_response({"status": "ready", "models": [str(r) for r in pinned]})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    from .protocols.mlflow import router as mlflow_router
    from .protocols.v2 import router as v2_router

    app.include_router(mlflow_router(state))
    app.include_router(v2_router(state))
    return app


def _pin(spec: str) -> ModelRef:
    return parse_model_uri(spec.strip())


def _version() -> str:
    from .. import __version__

    return __version__
