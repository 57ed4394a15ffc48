"""Evaluate the current policies against a model version's record.

Everything a rule needs is read from the database (the latest validation report's summary,
decisions, model card fields, dataset findings), so an evaluation is cheap and can run inside
the promotion's own transaction. Each evaluation is stored with the policy's hash and every
rule's outcome and reason.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select

from .. import audit
from ..context import Context
from ..lineage.edges import Node, edges_of
from ..registry.models import get_version, resolve, version_id
from ..registry.records import ModelVersion
from ..registry.uri import ModelRef, parse_model_uri
from ..store.tables import (
    model_aliases,
    model_card_fields,
    monitoring_plans,
    policy_evaluations,
    registered_models,
    utcnow,
    validation_reports,
)
from .approvals import authors_of, decisions_of, standing_approvals
from .policies import Policy, Rule, current_policies

__all__ = ["PolicyEvaluation", "PolicyOutcome", "RuleOutcome", "evaluate", "evaluate_version",
           "evaluations_of", "store_evaluation"]


class RuleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    passed: bool
    reason: str


class PolicyOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy: str | None
    policy_version: int | None
    policy_sha256: str | None
    passed: bool
    rules: list[RuleOutcome]


class PolicyEvaluation(BaseModel):
    """The verdict of every applicable policy on one version."""

    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    version: int
    passed: bool
    outcomes: list[PolicyOutcome]
    at: datetime
    by: str

    @property
    def failures(self) -> list[str]:
        return [f"{o.policy or 'gate'}: {r.rule}: {r.reason}"
                for o in self.outcomes for r in o.rules if not r.passed]


# --- the facts a rule reads ------------------------------------------------------------


class _Facts:
    def __init__(self, conn: Connection, version: ModelVersion) -> None:
        self.conn = conn
        self.version = version
        self.vid = version_id(conn, version.name, version.version)
        self.model = conn.execute(select(registered_models).where(
            registered_models.c.name == version.name)).one()
        row = conn.execute(select(validation_reports).where(
            validation_reports.c.model_version_id == self.vid)
            .order_by(validation_reports.c.created_at.desc()).limit(1)).first()
        self.report = row
        self.summary: dict[str, Any] = dict(row.summary) if row is not None else {}

    def metric(self, name: str, bound: str = "value") -> float | None:
        entry = (self.summary.get("metrics") or {}).get(name)
        if isinstance(entry, dict):
            key = {"value": "value", "ci_low": "low", "ci_high": "high"}[bound]
            value = entry.get(key)
            return None if value is None else float(value)
        return None if entry is None or bound != "value" else float(entry)

    def fairness(self, feature: str, metric: str) -> float | None:
        entry = (self.summary.get("fairness") or {}).get(feature) or {}
        value = entry.get(metric)
        return None if value is None else float(value)

    def card(self) -> dict[str, str]:
        rows = self.conn.execute(select(model_card_fields.c.field, model_card_fields.c.value)
                                 .where(model_card_fields.c.model_id == self.model.id,
                                        model_card_fields.c.version.in_(
                                            (0, self.version.version)))).all()
        return {f: v for f, v in rows if v and v.strip()}

    def monitoring_rules(self) -> int | None:
        """Rules in the model's current monitoring plan; None without a plan. (Read from
        the table: governance sits below monitoring and never imports it.)"""
        spec = self.conn.execute(select(monitoring_plans.c.spec).where(
            monitoring_plans.c.model_id == self.model.id)
            .order_by(monitoring_plans.c.version.desc()).limit(1)).scalar()
        return None if spec is None else len(spec.get("rules") or [])

    def training_dataset_versions(self) -> list[int]:
        if self.version.run_id is None:
            return []
        run = Node(type="run", id=self.version.run_id)
        return [int(e.parent.id) for e in edges_of(self.conn, [run])
                if e.parent.type == "dataset_version"]


def _bounds(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _check(rule: Rule, facts: _Facts) -> RuleOutcome:
    kind = rule.kind
    if kind == "metric":
        m = rule.metric
        assert m is not None
        if facts.report is None:
            return RuleOutcome(rule=m.describe(), passed=False, reason="no validation report")
        value = facts.metric(m.metric, m.bound)
        if value is None:
            return RuleOutcome(rule=m.describe(), passed=False,
                               reason=f"the validation report has no {m.metric}")
        ok = _bounds(value, m.min, m.max)
        return RuleOutcome(rule=m.describe(), passed=ok,
                           reason=f"{m.metric} {m.bound} is {_fmt(value)}")
    if kind == "no_regression":
        r = rule.no_regression
        assert r is not None
        text = f"no regression of {r.metric} versus {r.versus} beyond {r.tolerance:g}"
        return _no_regression(facts, text, r.metric, r.versus, r.tolerance)
    if kind == "fairness":
        f = rule.fairness
        assert f is not None
        limits = " and ".join(x for x in (
            f">= {f.min:g}" if f.min is not None else "",
            f"<= {f.max:g}" if f.max is not None else "") if x)
        text = f"{f.metric} for {'every sensitive feature' if f.feature == '*' else f.feature}" \
               f" {limits}"
        if facts.report is None:
            return RuleOutcome(rule=text, passed=False, reason="no validation report")
        features = list(facts.summary.get("fairness") or {}) if f.feature == "*" \
            else [f.feature]
        if not features:
            return RuleOutcome(rule=text, passed=False, reason=(
                "the validation report has no fairness analysis (validate with "
                "sensitive_features)"))
        values = {feat: facts.fairness(feat, f.metric) for feat in features}
        absent = [feat for feat, v in values.items() if v is None]
        if absent:
            return RuleOutcome(rule=text, passed=False, reason=(
                f"the validation report has no {f.metric} for {', '.join(absent)} "
                "(validate with it among the sensitive features)"))
        bad = [feat for feat, v in values.items() if not _bounds(v or 0.0, f.min, f.max)]
        return RuleOutcome(rule=text, passed=not bad, reason="; ".join(
            f"{f.metric} for {feat} is {_fmt(v or 0.0)}" for feat, v in values.items()))
    if kind == "evidence":
        return _evidence(rule.evidence or [], facts)
    if kind == "approvals":
        a = rule.approvals
        assert a is not None
        text = f"{a.count} approval(s) by a {a.role} who is not the author"
        authors = authors_of(facts.conn, facts.version)
        decisions = decisions_of(facts.conn, facts.version.name, facts.version.version)
        standing = [d for d in standing_approvals(decisions)
                    if d.actor not in authors and d.role in (a.role, "validator")]
        rejected = any(d.decision == "rejected" for d in decisions) and not standing
        reason = (f"{len(standing)} standing approval(s)"
                  + (f" by {', '.join(d.actor for d in standing)}" if standing else "")
                  + ("; rejected, awaiting a new approval" if rejected else ""))
        return RuleOutcome(rule=text, passed=len(standing) >= a.count, reason=reason)
    if kind == "no_identifier_features":
        return _no_identifiers(facts)
    raise AssertionError(kind)  # pragma: no cover - PolicySpec admits no other kind


def _no_regression(facts: _Facts, text: str, metric: str, versus: str,
                   tolerance: float) -> RuleOutcome:
    held = facts.conn.execute(select(model_aliases.c.version).where(
        model_aliases.c.model_id == facts.model.id, model_aliases.c.alias == versus)).scalar()
    if held is None or held == facts.version.version:
        return RuleOutcome(rule=text, passed=True,
                           reason=f"no other version holds {versus!r}")
    if facts.report is None:
        return RuleOutcome(rule=text, passed=False, reason="no validation report")
    ours = facts.metric(metric)
    comparison = facts.summary.get("comparison") or {}
    theirs = None
    if comparison.get("version") == held:
        value = (comparison.get("metrics") or {}).get(metric)
        theirs = value.get("value") if isinstance(value, dict) else value
    if ours is None or theirs is None:
        return RuleOutcome(rule=text, passed=False, reason=(
            f"the latest validation has no {metric} for version {held} (holding {versus!r}) "
            "on the same data: validate again"))
    lower_is_better = metric in ("log_loss", "brier", "mae", "rmse", "mape")
    delta = (float(theirs) - ours) if not lower_is_better else (ours - float(theirs))
    return RuleOutcome(rule=text, passed=delta <= tolerance, reason=(
        f"{metric} {_fmt(ours)} versus {_fmt(float(theirs))} for version {held}"))


def _evidence(items: list[str | dict[str, list[str]]], facts: _Facts) -> RuleOutcome:
    missing: list[str] = []
    for item in items:
        if isinstance(item, dict):
            card = facts.card()
            missing += [f"model card field {f}" for f in item["model_card"] if f not in card]
        elif item == "validation" and facts.report is None:
            missing.append("a validation report")
        elif item == "held_out_validation" and (facts.report is None
                                                or not facts.report.held_out):
            missing.append("a validation on held-out data")
        elif item == "explanations" and (facts.report is None
                                         or not facts.report.has_explanations):
            missing.append("explanations in the validation report")
        elif item == "monitoring_plan" and not facts.monitoring_rules():
            missing.append("a monitoring plan with at least one alert rule (modelworks "
                           f"monitor plan set {facts.version.name} plan.yaml)")
    names = ", ".join(i if isinstance(i, str) else "model card fields" for i in items)
    return RuleOutcome(rule=f"evidence: {names}", passed=not missing,
                       reason="missing " + "; ".join(missing) if missing else "all present")


def _no_identifiers(facts: _Facts) -> RuleOutcome:
    text = "no flagged identifier columns among the model's features"
    features = [c["name"] for c in (facts.version.signature or {}).get("inputs", [])]
    try:
        from .pii import identifier_columns
    except ImportError:  # pragma: no cover - pii.py ships with the package
        return RuleOutcome(rule=text, passed=False, reason="data protection is unavailable")
    flagged = identifier_columns(facts.conn, facts.training_dataset_versions())
    hits = sorted(set(features) & set(flagged))
    if hits:
        return RuleOutcome(rule=text, passed=False, reason="features flagged as identifiers: "
                           + ", ".join(f"{c} ({', '.join(flagged[c])})" for c in hits))
    return RuleOutcome(rule=text, passed=True,
                       reason=f"{len(features)} feature(s), none flagged")


def _review(facts: _Facts, today: date) -> RuleOutcome:
    due = facts.model.next_review_date
    if due is not None and due < today:
        return RuleOutcome(rule="periodic review is current", passed=False,
                           reason=f"review was due on {due.isoformat()}: validate again")
    return RuleOutcome(rule="periodic review is current", passed=True,
                       reason=f"next review {due.isoformat()}" if due else "no review due yet")


def evaluate_version(conn: Connection, version: ModelVersion, *,
                     today: date | None = None) -> list[tuple[int | None, PolicyOutcome]]:
    """Every applicable current policy's outcome (row id of the policy first)."""
    facts = _Facts(conn, version)
    review = _review(facts, today or date.today())
    applicable: list[tuple[int, Policy]] = [
        (pid, p) for pid, p in current_policies(conn)
        if p.spec.applies_to.matches(version.name, facts.model.risk_tier)]
    if not applicable:
        return [(None, PolicyOutcome(
            policy=None, policy_version=None, policy_sha256=None, passed=False,
            rules=[review, RuleOutcome(
                rule="a policy applies", passed=False,
                reason=f"no policy applies to {version.name!r} (risk tier "
                       f"{facts.model.risk_tier}): apply one (modelworks policy apply)")]))]
    out: list[tuple[int | None, PolicyOutcome]] = []
    for pid, policy in applicable:
        rules = [review, *(_check(rule, facts) for rule in policy.spec.rules)]
        out.append((pid, PolicyOutcome(policy=policy.name, policy_version=policy.version,
                                       policy_sha256=policy.sha256,
                                       passed=all(r.passed for r in rules), rules=rules)))
    return out


def store_evaluation(ctx: Context, conn: Connection, version: ModelVersion,
                     outcomes: list[tuple[int | None, PolicyOutcome]]) -> PolicyEvaluation:
    """Write the evaluation (one row per policy) and its audit event in ``conn``'s txn."""
    eval_id, now = uuid.uuid4().hex, utcnow()
    vid = version_id(conn, version.name, version.version)
    for i, (pid, outcome) in enumerate(outcomes):
        conn.execute(insert(policy_evaluations).values(
            id=eval_id if i == 0 else f"{eval_id[:28]}{i:04d}", model_version_id=vid,
            policy_id=pid, policy_sha256=outcome.policy_sha256, passed=outcome.passed,
            outcomes={"evaluation": eval_id, **outcome.model_dump(mode="json")},
            created_at=now, created_by=ctx.actor))
    evaluation = PolicyEvaluation(id=eval_id, model=version.name, version=version.version,
                                  passed=all(o.passed for _, o in outcomes),
                                  outcomes=[o for _, o in outcomes], at=now, by=ctx.actor)
    audit.append(ctx.db, conn, actor=ctx.actor, action="model_version.policy_evaluated",
                 entity_type="model_version", entity_id=f"{version.name}/{version.version}",
                 payload={"evaluation": eval_id, "passed": evaluation.passed,
                          "policies": [[o.policy, o.policy_version, o.policy_sha256, o.passed]
                                       for _, o in outcomes],
                          "failures": evaluation.failures})
    return evaluation


def evaluate(ctx: Context, uri: str | ModelRef) -> PolicyEvaluation:
    """Evaluate the current policies on the version ``uri`` names; stored and audited."""
    ref = parse_model_uri(uri) if isinstance(uri, str) else uri
    with ctx.db.write() as conn:
        version = resolve(conn, ref)
        return store_evaluation(ctx, conn, version, evaluate_version(conn, version))


def evaluations_of(conn: Connection, name: str, version: int) -> list[PolicyEvaluation]:
    """Stored evaluations of the version, newest first."""
    get_version(conn, name, version)
    vid = version_id(conn, name, version)
    rows = conn.execute(select(policy_evaluations).where(
        policy_evaluations.c.model_version_id == vid)
        .order_by(policy_evaluations.c.created_at.desc(), policy_evaluations.c.id)).all()
    grouped: dict[str, list[Any]] = {}
    for r in rows:
        grouped.setdefault(r.outcomes.get("evaluation", r.id), []).append(r)
    out = []
    for eid, group in grouped.items():
        outcomes = [PolicyOutcome.model_validate(
            {k: v for k, v in g.outcomes.items() if k != "evaluation"}) for g in group]
        out.append(PolicyEvaluation(id=eid, model=name, version=version,
                                    passed=all(o.passed for o in outcomes), outcomes=outcomes,
                                    at=group[0].created_at, by=group[0].created_by))
    return out
