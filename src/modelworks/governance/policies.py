"""Policies as code: YAML files, validated on apply, versioned and audited.

A policy names the models it applies to (risk tiers, optional name patterns) and a list of
rules. Each rule is a mapping with one kind key::

    - metric: roc_auc            # a validation metric; min and/or max; `bound` picks the
      min: 0.75                  # point value or an end of its bootstrap interval
      bound: ci_low
    - no_regression: {metric: roc_auc, versus: production, tolerance: 0.01}
    - fairness: {feature: sex, metric: demographic_parity_difference, max: 0.1}
    - evidence: [held_out_validation, explanations, monitoring_plan,
                 {model_card: [intended_use, limitations]}]
    - approvals: {count: 1, role: validator}
    - no_identifier_features: true

Applying a file whose policy name exists adds that name's next version (identical content
returns the current version unchanged). Errors name the line of the offending entry.
"""

from __future__ import annotations

import fnmatch
import hashlib
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, func, insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput, NotFound
from ..store.tables import policies, utcnow
from ..yaml_lines import line_of, load_yaml
from .metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from .roles import require_role

__all__ = [
    "CARD_FIELDS",
    "CLASSIFICATION_METRICS",
    "EVIDENCE",
    "FAIRNESS_METRICS",
    "REGRESSION_METRICS",
    "Policy",
    "PolicySpec",
    "apply_policy",
    "builtin_policies",
    "current_policies",
    "get_policy",
    "parse_policy",
]

FAIRNESS_METRICS = ("demographic_parity_difference", "demographic_parity_ratio",
                    "equalized_odds_difference")
# monitoring_plan: the model has a monitoring plan with at least one alert rule.
EVIDENCE = ("held_out_validation", "validation", "explanations", "model_card", "monitoring_plan")
# Model card fields only a person can write (see cards.py).
CARD_FIELDS = ("intended_use", "out_of_scope_uses", "factors", "ethical_considerations",
               "caveats", "limitations")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_BUILTIN = "builtin:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Applicability(_Strict):
    risk_tiers: list[Literal["low", "medium", "high"]] = ["low", "medium", "high"]
    models: list[str] = ["*"]

    def matches(self, name: str, risk_tier: str) -> bool:
        return risk_tier in self.risk_tiers and any(fnmatch.fnmatchcase(name, p)
                                                    for p in self.models)


class MetricRule(_Strict):
    metric: str
    min: float | None = None
    max: float | None = None
    bound: Literal["value", "ci_low", "ci_high"] = "value"

    @model_validator(mode="after")
    def _known(self) -> MetricRule:
        if self.metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; metrics are "
                             f"{', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}")
        if self.min is None and self.max is None:
            raise ValueError(f"metric rule {self.metric!r} needs min or max")
        return self

    def describe(self) -> str:
        parts = [f"{self.metric}"]
        if self.bound != "value":
            parts.append(f"({self.bound})")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"{'and ' if self.min is not None else ''}<= {self.max:g}")
        return " ".join(parts)


class NoRegression(_Strict):
    metric: str
    versus: str = "production"
    tolerance: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _known(self) -> NoRegression:
        if self.metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
            raise ValueError(f"unknown metric {self.metric!r}")
        return self


class FairnessRule(_Strict):
    feature: str
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _known(self) -> FairnessRule:
        if self.metric not in FAIRNESS_METRICS:
            raise ValueError(f"unknown fairness metric {self.metric!r}; fairness metrics are "
                             f"{', '.join(FAIRNESS_METRICS)}")
        if self.min is None and self.max is None:
            raise ValueError(f"fairness rule {self.metric!r} needs min or max")
        return self


class ApprovalsRule(_Strict):
    count: int = Field(1, ge=1, le=10)
    role: Literal["validator", "admin"] = "validator"


class Rule(_Strict):
    """One rule; exactly one kind is set."""

    metric: MetricRule | None = None
    no_regression: NoRegression | None = None
    fairness: FairnessRule | None = None
    evidence: list[str | dict[str, list[str]]] | None = None
    approvals: ApprovalsRule | None = None
    no_identifier_features: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _lift_metric(cls, data: Any) -> Any:
        # `- metric: auc\n  min: 0.7` reads naturally; store it as {metric: {...}}.
        if isinstance(data, dict) and isinstance(data.get("metric"), str):
            return {"metric": dict(data)}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("each rule has exactly one of: " + ", ".join(type(self).model_fields))
        for item in self.evidence or []:
            key = item if isinstance(item, str) else next(iter(item), "")
            if key not in EVIDENCE or (isinstance(item, dict) and len(item) != 1):
                raise ValueError(f"unknown evidence {key!r}; evidence is "
                                 f"{', '.join(EVIDENCE)} (model_card takes a list of fields)")
            if isinstance(item, dict):
                bad = [f for f in item[key] if f not in CARD_FIELDS]
                if bad:
                    raise ValueError(f"unknown model card field(s) {', '.join(bad)}; fields "
                                     f"are {', '.join(CARD_FIELDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class PolicySpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    applies_to: Applicability = Applicability()
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _name(self) -> PolicySpec:
        if not set(self.name) <= _NAME_CHARS:
            raise ValueError("name: use letters, digits and - _ .")
        return self


class Policy(BaseModel):
    """One applied version of a policy."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    sha256: str
    spec: PolicySpec
    content: str
    created_at: datetime
    created_by: str


# --- parsing with line numbers ---------------------------------------------------------


def parse_policy(text: str, source: str = "policy") -> PolicySpec:
    """Validate policy YAML; errors say which line and which field is wrong."""
    data, lines = load_yaml(text, source=source, field="policy",
                            expected="a policy is a YAML mapping with name and rules")
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (
                p in ("str", "dict[str,list[str]]") or p.startswith("function-"))))
            line = line_of(loc, lines)
            field = ".".join(str(p) for p in loc) or "policy"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"line {line}: {field}: {msg}" if line else f"{field}: {msg}")
        first_field = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "policy"
        raise InvalidInput(f"{source}: " + "; ".join(dict.fromkeys(problems)),
                           field=first_field) from exc


def builtin_policies() -> dict[str, Path]:
    """The example policies shipped with modelworks, one per risk tier, by name."""
    root = resources.files("modelworks.governance") / "policies"
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir()
            if str(p).endswith(".yaml")}


def _read(source: str | Path) -> tuple[str, str]:
    """(text, label) from a path, `builtin:NAME`, or YAML text itself."""
    if isinstance(source, str) and source.startswith(_BUILTIN):
        name = source[len(_BUILTIN):]
        shipped = builtin_policies()
        if name not in shipped:
            raise NotFound(f"no built-in policy {name!r}; built-in policies are "
                           f"{', '.join(sorted(shipped))}")
        return shipped[name].read_text(), source
    if isinstance(source, Path) or "\n" not in source:
        path = Path(source)
        if not path.is_file():
            raise NotFound(f"policy file {str(path)!r} not found")
        return path.read_text(), str(path)
    return source, "policy"


def _record(row: Any) -> Policy:
    return Policy(name=row.name, version=row.version, sha256=row.sha256,
                  spec=PolicySpec.model_validate(row.spec), content=row.content,
                  created_at=row.created_at, created_by=row.created_by)


def apply_policy(ctx: Context, source: str | Path) -> Policy:
    """Validate and store a policy; its name's next version unless the content is unchanged."""
    text, label = _read(source)
    spec = parse_policy(text, label)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with ctx.db.write() as conn:
        require_role(conn, ctx.actor, "admin", "applying a policy")
        latest = conn.execute(select(policies).where(policies.c.name == spec.name)
                              .order_by(policies.c.version.desc()).limit(1)).first()
        if latest is not None and latest.sha256 == digest:
            return _record(latest)
        version = (latest.version + 1) if latest is not None else 1
        now = utcnow()
        conn.execute(insert(policies).values(
            name=spec.name, version=version, content=text, sha256=digest,
            spec=spec.model_dump(mode="json", exclude_none=True), created_at=now,
            created_by=ctx.actor))
        audit.append(ctx.db, conn, actor=ctx.actor, action="policy.applied",
                     entity_type="policy", entity_id=spec.name,
                     payload={"version": version, "sha256": digest, "source": label})
        return Policy(name=spec.name, version=version, sha256=digest, spec=spec, content=text,
                      created_at=now, created_by=ctx.actor)


def current_policies(conn: Connection) -> list[tuple[int, Policy]]:
    """(row id, policy) for the latest version of every policy name."""
    latest = (select(policies.c.name, func.max(policies.c.version).label("v"))
              .group_by(policies.c.name).subquery())
    rows = conn.execute(select(policies).join(latest, (policies.c.name == latest.c.name) & (
        policies.c.version == latest.c.v)).order_by(policies.c.name)).all()
    return [(r.id, _record(r)) for r in rows]


def get_policy(conn: Connection, name: str, version: int | None = None) -> Policy:
    stmt = select(policies).where(policies.c.name == name)
    stmt = stmt.where(policies.c.version == version) if version is not None else \
        stmt.order_by(policies.c.version.desc()).limit(1)
    row = conn.execute(stmt).first()
    if row is None:
        what = f"version {version} of policy {name!r}" if version else f"policy {name!r}"
        raise NotFound(f"no {what}")
    return _record(row)
