"""A model's monitoring plan: alert rules, sinks and an optional schedule, as YAML.

    rules:
      - name: dataset-drift
        metric: drift.share            # a key of MonitorResult.metrics()
        op: ">"
        threshold: 0.3
        severity: critical             # info | warning (default) | critical
        cooldown: 6h                   # default 1h
        action: retrain                # none (default) | retrain
      - name: feature-psi
        metric: drift.column.*.psi     # `*` matches any characters: one alert per key
        op: ">"
        threshold: 0.2
    sinks:                             # default: [{type: log}]; [] keeps alerts in the table
      - {type: log}
      - {type: file, path: alerts.jsonl}
      - {type: webhook, url: "https://hooks.example/mw", secret_env: MW_HOOK_SECRET}
    schedule: {every: 1h, window: 1h}  # read by `modelworks worker`

Setting a plan stores the model's next plan version (identical text returns the current
version unchanged) and audits ``monitoring_plan.set``. Errors name the line and the field.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy import Connection, insert, select

from ... import audit
from ...context import Context
from ...errors import InvalidInput, NotFound
from ...store.tables import monitoring_plans, registered_models, utcnow
from ...yaml_lines import line_of, load_yaml

__all__ = ["FAMILIES", "AlertRule", "FileSink", "LogSink", "MonitoringPlan", "PlanSpec",
           "Schedule", "Sink", "WebhookSink", "get_plan", "parse_plan", "plan_of", "set_plan",
           "span"]

OPS = (">", ">=", "<", "<=", "==")
# Metric key families of MonitorResult.metrics(); a rule naming none of them is a typo.
FAMILIES = ("rows", "drift.", "quality.", "performance.", "segment.")
_SEGMENT_FAMILIES = ("rows", "positive_rate", "error_rate", "drift.", "quality.",
                     "performance.")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_SINK_TYPES = ("log", "file", "webhook")


def span(text: str, field: str) -> timedelta:
    """A duration such as 30m, 6h or 1d (the monitor's window grammar)."""
    from ..monitor import parse_window  # the monitor imports this package

    try:
        return parse_window(text)
    except InvalidInput as exc:
        raise ValueError(str(exc).replace("window", field, 1)) from None


def _known_family(pattern: str, families: tuple[str, ...]) -> bool:
    literal = pattern.split("*", 1)[0]
    return any(f.startswith(literal) or literal.startswith(f) for f in families) and (
        "*" in pattern or any(pattern == f or (f.endswith(".") and pattern.startswith(f)
                                               and len(pattern) > len(f)) for f in families))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertRule(_Strict):
    """One rule: ``metric op threshold`` raises an alert of ``severity``."""

    name: str = Field(min_length=1, max_length=128)
    metric: str = Field(min_length=1, max_length=250)
    op: Literal[">", ">=", "<", "<=", "=="]
    threshold: float
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: str = "1h"
    action: Literal["none", "retrain"] = "none"
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not set(value) <= _NAME_CHARS:
            raise ValueError("use letters, digits and - _ .")
        return value

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, value: str) -> str:
        span(value, "cooldown")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        head, eq, tail = value.partition("=")
        if head.startswith("segment.") and eq:
            # The segment's value may hold dots itself: any split that names a key will do.
            rests = [tail[i + 1:] for i, ch in enumerate(tail) if ch == "."]
            if not any(_known_family(r, _SEGMENT_FAMILIES) for r in rests):
                raise ValueError(f"unknown segment metric {value!r}; after "
                                 "segment.<column>=<value>. come "
                                 + ", ".join(f"{f}…" if f.endswith(".") else f
                                             for f in _SEGMENT_FAMILIES))
        elif not _known_family(value, FAMILIES):
            raise ValueError(f"unknown metric {value!r}; metric keys are rows or start with "
                             + ", ".join(f for f in FAMILIES if f.endswith(".")))
        return value

    @property
    def cooldown_span(self) -> timedelta:
        return span(self.cooldown, "cooldown")


class LogSink(_Strict):
    """Python logging (logger ``modelworks.alerts``) and a line on the console."""

    type: Literal["log"]


class FileSink(_Strict):
    """JSON lines appended to ``path`` (relative to the working directory), under a lock."""

    type: Literal["file"]
    path: str = Field(min_length=1)


class WebhookSink(_Strict):
    """HTTP POST of the alert as JSON, signed with HMAC-SHA256, retried with backoff."""

    type: Literal["webhook"]
    url: str
    secret_env: str | None = None  # the environment variable holding the HMAC secret
    timeout: float = Field(5.0, gt=0, le=120)
    retries: int = Field(5, ge=0, le=20)
    backoff: str = "1s"  # the first retry's delay; doubled per retry (with jitter), max 5m

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("url must be an http:// or https:// address")
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError("secret_env is the NAME of an environment variable (letters, "
                             "digits, _), not the secret itself")
        return value

    @field_validator("backoff")
    @classmethod
    def _backoff(cls, value: str) -> str:
        span(value, "backoff")
        return value


Sink = Annotated[LogSink | FileSink | WebhookSink, Field(discriminator="type")]


class Schedule(_Strict):
    """How often ``modelworks worker`` runs the monitor, over what window (default: every)."""

    every: str
    window: str | None = None

    @field_validator("every", "window")
    @classmethod
    def _span(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            span(value, info.field_name or "every")
        return value


class PlanSpec(_Strict):
    """The validated content of a plan file."""

    description: str | None = None
    rules: list[AlertRule] = []
    sinks: list[Sink] = Field(default_factory=lambda: list[Sink]([LogSink(type="log")]))
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _unique(self) -> PlanSpec:
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(dup)}")
        return self

    def rule(self, name: str) -> AlertRule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise NotFound(f"the monitoring plan has no rule {name!r}")


class MonitoringPlan(BaseModel):
    """One stored version of a model's monitoring plan."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    sha256: str
    spec: PlanSpec
    content: str
    created_at: datetime
    created_by: str


# --- parsing ---------------------------------------------------------------------------


def _loc(raw: tuple[Any, ...]) -> tuple[Any, ...]:
    # Drop the union tag pydantic inserts after a sink's index (sinks.0.webhook.url).
    out: list[Any] = []
    for part in raw:
        if (part in _SINK_TYPES and len(out) >= 2 and out[-2] == "sinks"
                and isinstance(out[-1], int)):
            continue
        out.append(part)
    return tuple(out)


def parse_plan(text: str, source: str = "plan") -> PlanSpec:
    """Validate plan YAML; errors say which line and which field is wrong."""
    data, lines = load_yaml(text, source=source, field="plan",
                            expected="a monitoring plan is a YAML mapping with rules (and "
                                     "optionally sinks and schedule)")
    return _validate(data, source, lines)


def _validate(data: dict[str, Any], source: str,
              lines: dict[tuple[Any, ...], int] | None = None) -> PlanSpec:
    try:
        return PlanSpec.model_validate(data)
    except ValidationError as exc:
        problems, fields = [], []
        for err in exc.errors():
            loc = _loc(tuple(err["loc"]))
            line = line_of(loc, lines) if lines else None
            field = ".".join(str(p) for p in loc) or "plan"
            fields.append(field)
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"line {line}: {field}: {msg}" if line else f"{field}: {msg}")
        raise InvalidInput(f"{source}: " + "; ".join(dict.fromkeys(problems)),
                           field=fields[0]) from exc


def _read(plan: str | Path | dict[str, Any]) -> tuple[str, str]:
    """(text, label) from a path, YAML text, or a mapping (dumped as YAML)."""
    if isinstance(plan, dict):
        return yaml.safe_dump(plan, sort_keys=False), "plan"
    if isinstance(plan, Path) or (isinstance(plan, str) and "\n" not in plan
                                  and ":" not in plan):
        path = Path(plan)
        if not path.is_file():
            raise NotFound(f"monitoring plan file {str(path)!r} not found")
        return path.read_text(), str(path)
    if isinstance(plan, str):
        return plan, "plan"
    raise InvalidInput("plan must be YAML text, a path or a mapping", field="plan")


# --- storage ---------------------------------------------------------------------------


def _model_id(conn: Connection, model: str) -> int:
    found = conn.execute(select(registered_models.c.id).where(
        registered_models.c.name == model)).scalar()
    if found is None:
        raise NotFound(f"no registered model named {model!r}")
    return int(found)


def _record(model: str, row: Any) -> MonitoringPlan:
    return MonitoringPlan(model=model, version=row.version, sha256=row.sha256,
                          spec=PlanSpec.model_validate(row.spec), content=row.source_text,
                          created_at=row.created_at, created_by=row.created_by)


def set_plan(ctx: Context, model: str, plan: str | Path | dict[str, Any]) -> MonitoringPlan:
    """Validate and store ``model``'s next plan version (unchanged text: the current one)."""
    text, label = _read(plan)
    spec = parse_plan(text, label)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with ctx.db.write() as conn:
        model_id = _model_id(conn, model)
        latest = conn.execute(select(monitoring_plans).where(
            monitoring_plans.c.model_id == model_id)
            .order_by(monitoring_plans.c.version.desc()).limit(1)).first()
        if latest is not None and latest.sha256 == digest:
            return _record(model, latest)
        version, now = (latest.version + 1) if latest is not None else 1, utcnow()
        conn.execute(insert(monitoring_plans).values(
            model_id=model_id, version=version, spec=spec.model_dump(mode="json"),
            source_text=text, sha256=digest, created_at=now, created_by=ctx.actor))
        audit.append(ctx.db, conn, actor=ctx.actor, action="monitoring_plan.set",
                     entity_type="model", entity_id=model, payload={
                         "version": version, "sha256": digest, "source": label,
                         "rules": [r.name for r in spec.rules],
                         "sinks": [s.type for s in spec.sinks],
                         "schedule": spec.schedule.model_dump() if spec.schedule else None})
        return MonitoringPlan(model=model, version=version, sha256=digest, spec=spec,
                              content=text, created_at=now, created_by=ctx.actor)


def plan_of(conn: Connection, model: str, version: int | None = None
            ) -> MonitoringPlan | None:
    """The model's plan (the latest, or ``version``); None when it has none."""
    stmt = select(monitoring_plans).where(monitoring_plans.c.model_id == _model_id(conn, model))
    stmt = stmt.where(monitoring_plans.c.version == version) if version is not None else \
        stmt.order_by(monitoring_plans.c.version.desc()).limit(1)
    row = conn.execute(stmt).first()
    return None if row is None else _record(model, row)


def get_plan(conn: Connection, model: str, version: int | None = None) -> MonitoringPlan:
    """Like ``plan_of``, but a missing plan is NotFound."""
    found = plan_of(conn, model, version)
    if found is None:
        what = f"version {version} of a monitoring plan" if version else "monitoring plan"
        raise NotFound(f"model {model!r} has no {what} (modelworks monitor plan set "
                       f"{model} plan.yaml)")
    return found
