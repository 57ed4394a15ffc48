"""Policies, roles, approvals and the promotion gate over SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import update

import modelworks as mw
from modelworks.store.tables import registered_models

POLICY = """\
name: prod
applies_to:
  risk_tiers: [high]
rules:
  - metric: roc_auc
    min: 0.6
  - fairness: {feature: sex, metric: demographic_parity_difference, max: 0.5}
  - evidence: [held_out_validation, {model_card: [intended_use]}]
  - approvals: {count: 1, role: validator}
"""


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 1_200
    df = pd.DataFrame({"amount": rng.normal(100, 25, n), "prior": rng.integers(0, 5, n),
                       "sex": rng.choice(["f", "m"], n)})
    df["needs_review"] = ((df["amount"] + 12 * df["prior"] + rng.normal(0, 15, n)) > 125
                          ).astype(int)
    return df.iloc[:800].reset_index(drop=True), df.iloc[800:].reset_index(drop=True)


def _train(ws: mw.Workspace, train: pd.DataFrame, name: str = "claims") -> mw.ModelVersion:
    x, y = train[["amount", "prior"]], train["needs_review"]
    with ws.start_run(experiment="gov") as run:
        ds = ws.log_dataset(train, name="claims-train")
        run.use_dataset(ds, role="train")
        model = LogisticRegression(max_iter=500).fit(x, y)
        return ws.register_model(name, model=model, run=run, input_example=x.head(),
                                 risk_tier="high")


def _other(ws: mw.Workspace, user: str) -> mw.Workspace:
    return mw.Workspace(ws.location.db_url, artifacts=ws.location.artifacts, user=user)


def test_policy_apply_versions_and_errors_name_the_line(workspace: mw.Workspace,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "prod.yaml"
    path.write_text(POLICY)
    first = workspace.apply_policy(str(path))
    assert (first.name, first.version, len(first.spec.rules)) == ("prod", 1, 4)
    assert workspace.apply_policy(str(path)).version == 1  # same content: same version
    path.write_text(POLICY.replace("min: 0.6", "min: 0.65"))
    second = workspace.apply_policy(path)
    assert second.version == 2 and second.sha256 != first.sha256
    assert [p.version for p in workspace.policies()] == [2]
    assert workspace.get_policy("prod", 1).content == POLICY
    assert {"policy.applied"} <= {e.action for e in workspace.audit_log(limit=None)}

    path.write_text(POLICY.replace("metric: roc_auc", "metric: auroc"))
    with pytest.raises(mw.InvalidInput, match=r"line 5: .*unknown metric 'auroc'"):
        workspace.apply_policy(str(path))
    path.write_text(POLICY.replace("count: 1, role: validator", "count: 1, role: boss"))
    with pytest.raises(mw.InvalidInput, match=r"line 9: rules\.3\.approvals\.role"):
        workspace.apply_policy(str(path))
    with pytest.raises(mw.NotFound, match="no built-in policy"):
        workspace.apply_policy("builtin:extreme-risk")
    for tier in ("low-risk", "medium-risk", "high-risk"):
        assert workspace.apply_policy(f"builtin:{tier}").name == tier


def test_roles_need_an_admin_and_are_audited(workspace: mw.Workspace) -> None:
    bob = _other(workspace, "bob")
    try:
        with pytest.raises(mw.PermissionDenied, match="admin"):
            bob.grant_role("bob", "validator")
        with pytest.raises(mw.PermissionDenied, match="admin"):
            bob.apply_policy("builtin:low-risk")
        workspace.grant_role("bob", "validator")
        with pytest.raises(mw.InvalidInput, match="unknown role"):
            workspace.grant_role("bob", "superuser")
        assert ("bob", "validator") in {(b.user, b.role) for b in workspace.roles()}
        workspace.revoke_role("bob", "validator")
        with pytest.raises(mw.InvalidInput, match="last admin"):
            workspace.revoke_role("alice", "admin")
        actions = [e.action for e in workspace.audit_log(entity_type="user", limit=None)]
        assert actions == ["role.revoked", "role.granted"]
    finally:
        bob.close()


def test_approvals_need_validator_and_segregation(workspace: mw.Workspace, frames) -> None:
    train, _ = frames
    mv = _train(workspace, train)
    bob = _other(workspace, "bob")
    try:
        with pytest.raises(mw.PermissionDenied, match="validator"):
            bob.approve(mv.uri, reason="looks fine")
        workspace.grant_role("alice", "validator")
        with pytest.raises(mw.PermissionDenied, match="segregation of duties"):
            workspace.approve(mv.uri, reason="my own model")  # alice trained and registered it
        workspace.grant_role("bob", "validator")
        with pytest.raises(mw.InvalidInput, match="reason"):
            bob.approve(mv.uri, reason=" ")
        decision = bob.approve("claims/1", reason="evidence reviewed")
        assert (decision.decision, decision.actor) == ("approved", "bob")
        assert workspace.get_model("claims").validation_status == "approved"
        bob.reject(mv.uri, reason="found a leak")
        assert [d.decision for d in workspace.decisions(mv.uri)] == ["approved", "rejected"]
    finally:
        bob.close()


def test_gate_refuses_records_and_then_passes(workspace: mw.Workspace, frames,
                                              tmp_path: Path) -> None:
    train, holdout = frames
    mv = _train(workspace, train)
    path = tmp_path / "prod.yaml"
    path.write_text(POLICY)
    workspace.apply_policy(path)

    with pytest.raises(mw.PolicyViolation) as refused:
        workspace.set_alias("claims", "production", 1, reason="ship")
    text = str(refused.value)
    assert "no validation report" in text and "approval" in text
    stored = workspace.policy_evaluations(mv.uri)
    assert len(stored) == 1 and not stored[0].passed  # the refusal is on the record
    assert workspace.resolve_model("models:/claims/1").aliases == []

    workspace.validate(mv.uri, data=holdout, label="needs_review", sensitive_features=["sex"],
                       n_bootstrap=50)
    workspace.update_model_card("claims", intended_use="Triage of incoming claims.")
    evaluation = workspace.evaluate_policy(mv.uri)
    failed = [r.rule for o in evaluation.outcomes for r in o.rules if not r.passed]
    assert failed == ["1 approval(s) by a validator who is not the author"]

    workspace.grant_role("bob", "validator")
    bob = _other(workspace, "bob")
    try:
        bob.approve(mv.uri, reason="report reviewed")
        moved = workspace.set_alias("claims", "production", 1, reason="approved")
        assert "production" in moved.aliases
        assert workspace.get_model("claims").lifecycle_status == "production"
        assert workspace.policy_evaluations(mv.uri)[0].passed

        # a rejection blocks the next promotion until someone approves again
        mv2 = _train(workspace, train)
        workspace.validate(mv2.uri, data=holdout, label="needs_review",
                           sensitive_features=["sex"], n_bootstrap=50)
        bob.approve(mv2.uri, reason="ok")
        bob.reject(mv2.uri, reason="calibration drifted")
        with pytest.raises(mw.PolicyViolation, match="rejected"):
            workspace.set_alias("claims", "production", 2, reason="try")
        bob.approve(mv2.uri, reason="recalibrated, fine")
        workspace.set_alias("claims", "production", 2, reason="approved again")
    finally:
        bob.close()

    # an overdue periodic review blocks new promotions
    with workspace.db.write() as conn:
        conn.execute(update(registered_models).values(
            next_review_date=date.today() - timedelta(days=1)))
    assert workspace.get_model("claims").review_overdue
    with pytest.raises(mw.PolicyViolation, match="review was due"):
        workspace.set_alias("claims", "production", 1, reason="roll back")

    # break glass: an admin forces it, with a reason; audited and shown in the card
    workspace.set_alias("claims", "production", 1, reason="incident 7: roll back now",
                        force=True)
    events = workspace.audit_log(action="model_alias.break_glass", limit=None)
    assert [e.reason for e in events] == ["incident 7: roll back now"]
    card = workspace.model_card("claims", 1)
    assert isinstance(card, dict)
    assert card["governance"]["break_glass"][0]["reason"] == "incident 7: roll back now"

    # taking a model out of service needs an admin and a reason, not the gate
    with pytest.raises(mw.InvalidInput, match="reason"):
        workspace.delete_alias("claims", "production")
    carol = _other(workspace, "carol")
    try:
        with pytest.raises(mw.PermissionDenied, match="admin"):
            carol.delete_alias("claims", "production", reason="mine now")
    finally:
        carol.close()
    workspace.delete_alias("claims", "production", reason="withdrawn pending review")
    assert workspace.alias_history("claims", "production")[-1].version is None


def test_model_card_and_inventory(workspace: mw.Workspace, frames) -> None:
    train, holdout = frames
    mv = _train(workspace, train)
    workspace.update_model("claims", business_purpose="Route claims to reviewers",
                           vendor=False)
    with pytest.raises(mw.InvalidInput, match="lifecycle_status"):
        workspace.update_model("claims", lifecycle_status="launched")
    with pytest.raises(mw.InvalidInput, match="unknown model card field"):
        workspace.update_model_card("claims", purpose="x")
    workspace.update_model_card("claims", intended_use="Triage of claims.",
                                limitations="Not for fraud decisions.")
    workspace.update_model_card("claims", 1, caveats="Trained on 2025 claims only.")
    workspace.validate(mv.uri, data=holdout, label="needs_review", sensitive_features=["sex"],
                       n_bootstrap=50)
    card = workspace.model_card("claims", 1)
    assert isinstance(card, dict)
    assert card["model_details"]["sha256"] == mv.sha256
    assert card["model_details"]["business_purpose"] == "Route claims to reviewers"
    assert card["intended_use"]["intended_use"] == "Triage of claims."
    assert card["caveats_and_recommendations"]["caveats"] == "Trained on 2025 claims only."
    assert "roc_auc" in card["metrics"]["results"]
    assert card["training_data"]["datasets"][0]["dataset"] == "claims-train"
    assert "sex" in card["quantitative_analyses"]["fairness"]
    md = workspace.model_card("claims", 1, format="md")
    html = workspace.model_card("claims", 1, format="html")
    assert isinstance(md, str) and "# Model card: claims version 1" in md
    assert "Not for fraud decisions." in md and "roc_auc" in md
    assert isinstance(html, str) and html.startswith("<!DOCTYPE html>")
    assert "Triage of claims." in html and "http://" not in html and "https://" not in html
    assert {"model_card.updated", "model.updated"} <= {
        e.action for e in workspace.audit_log(limit=None)}

    workspace.register_model("claims", model=LogisticRegression().fit(
        train[["amount", "prior"]], train["needs_review"]))
    workspace.archive_model_version("claims", 2, reason="superseded")
    rows = workspace.inventory()
    assert [(r["model"], r["version"], r["version_status"]) for r in rows] == [
        ("claims", 1, "registered"), ("claims", 2, "archived")]
    assert rows[0]["validation_status"] == "validated" and rows[0]["next_review_date"]
    assert rows[0]["last_validated_at"] is not None
    from modelworks.governance.inventory import INVENTORY_COLUMNS, render_inventory

    parsed = list(csv.DictReader(io.StringIO(render_inventory(rows, "csv"))))
    assert list(parsed[0]) == list(INVENTORY_COLUMNS) and len(parsed) == 2
    assert json.loads(render_inventory(rows, "json"))[1]["version_status"] == "archived"


def test_identifier_features_rule(workspace: mw.Workspace, frames, tmp_path: Path) -> None:
    train, _ = frames
    train = train.assign(email=[f"user{i}@example.com" for i in range(len(train))])
    x, y = train[["amount", "prior", "email"]], train["needs_review"]
    ds = workspace.log_dataset(train, name="with-emails")
    workspace.scan_dataset("with-emails")
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(make_column_transformer(("passthrough", ["amount", "prior"])),
                         LogisticRegression(max_iter=500)).fit(x, y)
    with workspace.start_run(experiment="gov") as run:
        run.use_dataset(ds, role="train")
        mv = workspace.register_model("leaky", model=pipe, run=run, input_example=x.head(),
                                      risk_tier="high")
    path = tmp_path / "p.yaml"
    path.write_text("name: ids\nrules:\n  - no_identifier_features: true\n")
    workspace.apply_policy(path)
    outcome = workspace.evaluate_policy(mv.uri).outcomes[0]
    rule = next(r for r in outcome.rules if r.rule.startswith("no flagged"))
    assert not rule.passed and "email" in rule.reason
