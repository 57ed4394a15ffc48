"""The record of retrainings: one ``mw_retrain_runs`` row per run, steps appended as it goes.

``RetrainRecord`` writes a step, or the final status, with its audit event in one
transaction (``retrain.step``, ``retrain.finished``; ``retrain.started`` when the row is
made), every payload carrying the run's trigger — the alert, the schedule, or ``manual``.
The steps themselves are in ``retraining.py``.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy import Connection, insert, select, update

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound
from ..registry.models import resolve
from ..registry.records import ModelVersion
from ..registry.uri import parse_model_uri
from ..serving.deployments import Deployment, traffic_listeners
from ..store.tables import alerts, registered_models, retrain_runs, utcnow

if TYPE_CHECKING:
    from .training_specs import TrainingSpec

__all__ = ["WAITING", "RetrainRecord", "RetrainResult", "RetrainStep", "claim_waiting",
           "error_text", "get_retrain_run", "list_retrain_runs", "settle_canaries",
           "start_retrain"]

WAITING = "awaiting_approval"
_CLAIMED = "rolling_out"  # a worker took a waiting run to roll it out (or close it)
_log = logging.getLogger("modelworks.retrain")


class RetrainStep(BaseModel):
    """One step of a retraining, with what it produced."""

    model_config = ConfigDict(frozen=True)

    name: str
    at: datetime
    details: dict[str, Any] = {}


class RetrainResult(BaseModel):
    """One retraining: trigger, steps, status and the candidate version."""

    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    trigger: str
    trigger_id: str | None
    status: str
    candidate_version: int | None
    steps: list[RetrainStep]
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    actor: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def candidate(self) -> str | None:
        """``models:/NAME/VERSION`` of the candidate, once registered."""
        if self.candidate_version is None:
            return None
        return f"models:/{self.model}/{self.candidate_version}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def base_version(self) -> int | None:
        """The version the trigger named (whose inputs the candidate keeps)."""
        started = self.step("started")
        return None if started is None else started.details.get("base_version")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message(self) -> str | None:
        """What the last step had to say (what approval is needed, why it failed...)."""
        for step in reversed(self.steps):
            if "message" in step.details:
                return str(step.details["message"])
        return self.error

    def step(self, name: str) -> RetrainStep | None:
        """The latest step called ``name``."""
        return next((s for s in reversed(self.steps) if s.name == name), None)


# --- the record -------------------------------------------------------------------------


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(details, default=str)))


def _step(name: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "at": utcnow().isoformat(), "details": _plain(details)}


def error_text(exc: BaseException) -> str:
    field = getattr(exc, "field", None)
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__} ({field}): {text}" if field else f"{type(exc).__name__}: {text}"


class RetrainRecord:
    """Appends steps to one retrain run row, each with its audit event."""

    def __init__(self, ctx: Context, run_id: str, model: str, trigger: str,
                 trigger_id: str | None) -> None:
        self.ctx, self.id, self.model = ctx, run_id, model
        self.trigger, self.trigger_id = trigger, trigger_id
        self.candidate: int | None = None

    def _append(self, conn: Connection, name: str, details: dict[str, Any]) -> list[Any]:
        steps = conn.execute(select(retrain_runs.c.steps).where(
            retrain_runs.c.id == self.id)).scalar_one()
        return [*steps, _step(name, details)]

    def _audit(self, conn: Connection, action: str, payload: dict[str, Any]) -> None:
        audit.append(self.ctx.db, conn, actor=self.ctx.actor, action=action,
                     entity_type="model", entity_id=self.model, payload={
                         "retrain_run": self.id, "trigger": self.trigger,
                         "trigger_id": self.trigger_id, **_plain(payload)})

    def step(self, name: str, **details: Any) -> None:
        with self.ctx.db.write() as conn:
            values: dict[str, Any] = {"steps": self._append(conn, name, details)}
            if self.candidate is not None:
                values["candidate_version"] = self.candidate
            conn.execute(update(retrain_runs).where(retrain_runs.c.id == self.id)
                         .values(**values))
            self._audit(conn, "retrain.step", {"step": name, **details})

    def finish(self, status: str, *, error: str | None = None, **details: Any) -> None:
        with self.ctx.db.write() as conn:
            conn.execute(update(retrain_runs).where(retrain_runs.c.id == self.id).values(
                status=status, steps=self._append(conn, status, details), error=error,
                candidate_version=self.candidate, finished_at=utcnow()))
            self._audit(conn, "retrain.finished", {
                "status": status, "candidate_version": self.candidate,
                "message": details.get("message"), "error": error})

    def fail(self, exc: BaseException) -> None:
        text = error_text(exc)
        try:
            self.finish("failed", error=text, message=f"retraining failed: {text}")
        except Exception:  # the store itself is down: the original error still propagates
            _log.exception(
                "retrain run %s failed (%s) and could not be recorded", self.id, text)


def start_retrain(ctx: Context, base: ModelVersion, spec: TrainingSpec | None, trigger: str,
           trigger_id: str | None) -> RetrainRecord:
    run_id, now = uuid.uuid4().hex, utcnow()
    details: dict[str, Any] = {"uri": base.uri, "base_version": base.version}
    if spec is not None:
        details.update(entrypoint=spec.entrypoint, data=spec.source, endpoint=spec.endpoint)

    def work(conn: Connection) -> None:
        if trigger == "alert":  # one retraining per alert: claims of one alert queue here
            if conn.execute(select(alerts.c.id).where(alerts.c.id == trigger_id)).first() \
                    is None:
                raise NotFound(f"no alert {trigger_id!r}")
            ctx.db.lock_for_update(conn, alerts, trigger_id)
            done = conn.execute(select(retrain_runs.c.id).where(
                retrain_runs.c.trigger == "alert",
                retrain_runs.c.trigger_id == trigger_id)).scalar()
            if done is not None:
                raise Conflict(f"alert {trigger_id} already triggered retrain run {done}")
        model_id = conn.execute(select(registered_models.c.id).where(
            registered_models.c.name == base.name)).scalar_one()
        conn.execute(insert(retrain_runs).values(
            id=run_id, model_id=model_id, trigger=trigger, trigger_id=trigger_id,
            status="running", candidate_version=None, steps=[_step("started", details)],
            error=None, started_at=now, finished_at=None, actor=ctx.actor))
        audit.append(ctx.db, conn, actor=ctx.actor, action="retrain.started",
                     entity_type="model", entity_id=base.name, payload={
                         "retrain_run": run_id, "trigger": trigger,
                         "trigger_id": trigger_id, **_plain(details)})

    with ctx.db.write() as conn:
        work(conn)
    return RetrainRecord(ctx, run_id, base.name, trigger, trigger_id)


def claim_waiting(ctx: Context, run_id: str) -> bool:
    """Take a waiting run (one worker wins): awaiting_approval -> rolling_out."""
    with ctx.db.write() as conn:
        done = conn.execute(update(retrain_runs).where(
            retrain_runs.c.id == run_id, retrain_runs.c.status == WAITING).values(
            status=_CLAIMED))
        return done.rowcount == 1


def _result(row: Any, model: str) -> RetrainResult:
    return RetrainResult(
        id=row.id, model=model, trigger=row.trigger, trigger_id=row.trigger_id,
        status=row.status, candidate_version=row.candidate_version,
        steps=[RetrainStep.model_validate(s) for s in row.steps], error=row.error,
        started_at=row.started_at, finished_at=row.finished_at, actor=row.actor)


def get_retrain_run(conn: Connection, run_id: str) -> RetrainResult:
    row = conn.execute(select(retrain_runs, registered_models.c.name.label("model_name"))
                       .join(registered_models,
                             registered_models.c.id == retrain_runs.c.model_id)
                       .where(retrain_runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"no retrain run {run_id!r}")
    return _result(row, row.model_name)


def list_retrain_runs(conn: Connection, model: str | None = None, *, limit: int = 20
                      ) -> list[RetrainResult]:
    """Retrain runs, newest first (of one model, or all)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput("limit must be a positive integer", field="limit")
    stmt = select(retrain_runs, registered_models.c.name.label("model_name")).join(
        registered_models, registered_models.c.id == retrain_runs.c.model_id)
    if model is not None:
        from ..registry.models import get_model

        get_model(conn, model)
        stmt = stmt.where(registered_models.c.name == model)
    rows = conn.execute(stmt.order_by(retrain_runs.c.started_at.desc()).limit(limit)).all()
    return [_result(r, r.model_name) for r in rows]


# --- a canary's outcome -------------------------------------------------------------------


def _served_version(conn: Connection, uri: str) -> tuple[str, int] | None:
    try:
        version = resolve(conn, parse_model_uri(uri))
    except (InvalidInput, NotFound):
        return None
    return version.name, version.version


def settle_canaries(ctx: Context, conn: Connection, before: Deployment,
                    after: Deployment) -> None:
    """Close the ``canary`` retrain runs whose candidate just left the endpoint's canaries.

    ``promoted`` when the endpoint's main entry now serves the candidate (``deploy
    promote``), ``withdrawn`` otherwise (rolled back by hand or by canary analysis, or
    replaced): in the transaction of the traffic change, with a ``retrain.settled`` event.
    """
    gone = {r.model for r in before.canaries} - {r.model for r in after.canaries}
    if not gone:
        return
    served = _served_version(conn, after.main.model)
    for uri in sorted(gone):
        try:
            ref = parse_model_uri(uri)
        except InvalidInput:
            continue
        if ref.version is None:  # retraining puts candidates on as NAME/VERSION
            continue
        rows = conn.execute(select(retrain_runs).join(
            registered_models, registered_models.c.id == retrain_runs.c.model_id).where(
            registered_models.c.name == ref.name,
            retrain_runs.c.candidate_version == ref.version,
            retrain_runs.c.status == "canary")).all()
        status = "promoted" if served == (ref.name, ref.version) else "withdrawn"
        for row in rows:
            run = _result(row, ref.name)
            canary = run.step("canary")
            if canary is None or canary.details.get("endpoint") != after.name:
                continue
            message = (f"{run.candidate} was promoted on {after.name!r}" if status == "promoted"
                       else f"{run.candidate} left {after.name!r} without being promoted")
            conn.execute(update(retrain_runs).where(retrain_runs.c.id == run.id).values(
                status=status, steps=[*row.steps, _step(status, {
                    "endpoint": after.name, "main": after.main.model, "message": message})],
                finished_at=utcnow()))
            audit.append(ctx.db, conn, actor=ctx.actor, action="retrain.settled",
                         entity_type="model", entity_id=ref.name, payload={
                             "retrain_run": run.id, "trigger": run.trigger,
                             "trigger_id": run.trigger_id, "status": status,
                             "candidate_version": ref.version, "endpoint": after.name})


if settle_canaries not in traffic_listeners:
    traffic_listeners.append(settle_canaries)
