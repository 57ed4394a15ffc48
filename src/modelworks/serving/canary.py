"""An endpoint's canary rules, and taking a failed canary out of its traffic.

The rules say when a canary (or shadow) fails its comparison with the main entry; the
analysis itself reads the prediction log and lives in ``monitoring.canary_analysis``. They are
stored in the deployment's spec under ``canary_rules`` (a traffic change keeps them), and
every change is a deployment history entry ``canary_rules_set`` with its audit event — so
``deploy history`` shows when the rules changed, and ``rollback`` leaves them alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import Connection, select, update

from ..context import Context
from ..errors import InvalidInput
from ..store.tables import deployments
from ._deployment_rules import check_gate, gaining, reason_text, validate_deployment_name, write
from .deployments import _load, _locked, _log, _save, list_deployments
from .routing import Deployment, Route

__all__ = [
    "CanaryRules",
    "canary_rules",
    "endpoints_with_canary",
    "parse_canary_rules",
    "remove_canaries",
    "set_canary_rules",
]

RULES_KEY = "canary_rules"
DriftMethod = Literal["auto", "jensenshannon", "psi", "wasserstein"]


class CanaryRules(BaseModel):
    """When a candidate fails against the main entry; ``None`` switches a check off.

    A comparison with fewer than ``min_requests`` requests on either side is
    ``inconclusive`` (no action). The accuracy check needs ``min_labels`` labelled rows on
    each side; ``latency_floor_ms`` keeps sub-millisecond jitter from failing a canary
    (the p95 must rise by more than the ratio *and* by more than the floor).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_requests: int = 100
    max_error_rate_increase: float | None = 0.01
    max_latency_p95_ratio: float | None = 1.5
    latency_floor_ms: float = 5.0
    max_prediction_drift: float | None = 0.1
    drift_method: DriftMethod = "auto"
    min_accuracy_delta: float | None = -0.02
    min_labels: int = 100
    min_agreement: float | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _number(cls, value: Any, info: Any) -> Any:
        if info.field_name == "drift_method":
            return value
        if isinstance(value, bool) or (value is not None
                                       and not isinstance(value, int | float)):
            raise ValueError(f"must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be finite, got {value!r}")
        return value

    @field_validator("min_requests", "min_labels")
    @classmethod
    def _count(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value

    @field_validator("max_error_rate_increase", "min_agreement")
    @classmethod
    def _share(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"must be a share from 0 to 1, got {value}")
        return value

    @field_validator("max_latency_p95_ratio", "max_prediction_drift")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError(f"must be positive, got {value}")
        return value

    @field_validator("latency_floor_ms")
    @classmethod
    def _floor(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return value

    @field_validator("min_accuracy_delta")
    @classmethod
    def _delta(cls, value: float | None) -> float | None:
        if value is not None and not -1 <= value <= 1:
            raise ValueError(f"must be from -1 to 1, got {value}")
        return value


def _mapping(rules: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[Mapping[str, Any], str]:
    """(the rules as a mapping, where they came from) from a mapping, YAML text or a path."""
    if isinstance(rules, Mapping):
        return rules, "rules"
    if isinstance(rules, os.PathLike) or (isinstance(rules, str) and "\n" not in rules
                                          and rules.strip().endswith((".yaml", ".yml"))):
        path = Path(rules)
        if not path.is_file():
            raise InvalidInput(f"rules file {str(path)!r} does not exist", field="rules")
        text, source = path.read_text(), path.name
    elif isinstance(rules, str):
        text, source = rules, "rules"
    else:
        raise InvalidInput("rules must be a mapping, YAML text or a path to a YAML file",
                           field="rules")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML: {getattr(exc, 'problem', exc)}",
                           field="rules") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{source}: canary rules are a mapping of rule: value (rules: "
                           f"{', '.join(CanaryRules.model_fields)})", field="rules")
    return data, source


def parse_canary_rules(rules: CanaryRules | Mapping[str, Any] | str | os.PathLike[str] | None
                       ) -> CanaryRules:
    """Rules from a mapping, YAML text or a YAML file; unset rules keep their defaults.

    Raises:
        InvalidInput: naming the rule (``field="rules.max_error_rate_increase"``).
    """
    if rules is None:
        return CanaryRules()
    if isinstance(rules, CanaryRules):
        return rules
    data, source = _mapping(rules)
    try:
        return CanaryRules.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "rules"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"not a canary rule (rules: {', '.join(CanaryRules.model_fields)})"
        raise InvalidInput(f"{source}: {name}: {msg}", field=f"rules.{name}") from exc


def _stored(conn: Connection, name: str) -> dict[str, Any]:
    spec = conn.execute(select(deployments.c.spec).where(deployments.c.name == name)
                        ).scalar_one()
    return dict(spec.get(RULES_KEY) or {})


def canary_rules(conn: Connection, name: str) -> CanaryRules:
    """The endpoint's rules (defaults for what was never set). NotFound: no such endpoint."""
    _load(conn, name)
    return CanaryRules.model_validate(_stored(conn, name))


def set_canary_rules(ctx: Context, name: str,
                     rules: CanaryRules | Mapping[str, Any] | str | os.PathLike[str], *,
                     reason: str | None = None) -> CanaryRules:
    """Replace the endpoint's canary rules (rules not given take their defaults); audited.

    Raises:
        NotFound: no deployment of that name.
        InvalidInput: a malformed rule, named in ``field``.
    """
    validate_deployment_name(name)
    parsed = parse_canary_rules(rules)
    explicit = parsed.model_dump(exclude_defaults=True)
    why = "canary rules set" if reason is None else reason_text(reason, "setting rules")

    def work(conn: Connection) -> CanaryRules:
        dep_id, dep = _locked(ctx, conn, name)
        spec = conn.execute(select(deployments.c.spec).where(deployments.c.id == dep_id)
                            ).scalar_one()
        previous = dict(spec.get(RULES_KEY) or {})
        conn.execute(update(deployments).where(deployments.c.id == dep_id).values(
            spec={**spec, RULES_KEY: explicit}))
        _log(ctx, conn, dep_id, dep, dep, action="canary_rules_set", reason=why,
             extra={RULES_KEY: parsed.model_dump(), "previous_canary_rules": previous})
        return parsed

    return write(ctx, work)


def remove_canaries(ctx: Context, name: str, models: Sequence[str], *, reason: str,
                    record: Callable[[Connection, list[str]], None] | None = None,
                    extra: Mapping[str, Any] | None = None) -> Deployment:
    """Take these canary routes out of the split; their share goes to the main entry.

    One ``traffic_changed`` entry (so ``rollback`` can bring them back), checked by the gate
    rule like any traffic change. URIs that are no longer canaries are left alone. ``record``
    runs in the same transaction with the URIs actually removed — where the analysis that
    decided it is stored, so the change and its evidence commit together or not at all;
    ``extra`` goes into the history entry and the audit payload.
    """
    why = reason_text(reason, "removing a canary")

    def work(conn: Connection) -> Deployment:
        dep_id, before = _locked(ctx, conn, name)
        current = {r.model for r in before.canaries}
        gone = [m for m in dict.fromkeys(models) if m in current]
        after = before
        if gone:
            freed = sum(r.weight for r in before.routes[1:] if r.model in gone)
            routes = [Route(model=before.main.model, weight=before.main.weight + freed),
                      *(r for r in before.routes[1:] if r.model not in gone)]
            after = before.model_copy(update={"routes": routes})
            check_gate(ctx, conn, gaining(before, after), store=True)
            after = _save(ctx, conn, dep_id, before, after, action="traffic_changed",
                          reason=why, extra={**(extra or {}), "removed_canaries": gone})
        if record is not None:
            record(conn, gone)
        return after

    return write(ctx, work)


def endpoints_with_canary(ctx: Context, *, include_shadows: bool = True) -> list[str]:
    """Active endpoints with a canary route (or a shadow): what the worker analyses."""
    with ctx.db.read() as conn:
        found = list_deployments(conn)
    return [d.name for d in found if d.status == "active"
            and (d.canaries or (include_shadows and d.shadows))]
