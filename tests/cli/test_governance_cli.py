"""``modelworks policy / approve / reject / roles / models card|inventory|update`` in-process
against a real SQLite workspace."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

import modelworks as mw
from modelworks.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """'claims' v1 (high risk), validated on held-out data; bob is a validator."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"amount": rng.normal(100, 20, 600), "prior": rng.integers(0, 4, 600),
                       "sex": rng.choice(["f", "m"], 600)})
    df["y"] = ((df["amount"] + 10 * df["prior"] + rng.normal(0, 10, 600)) > 115).astype(int)
    train, holdout = df.iloc[:400], df.iloc[400:]
    ws_folder = tmp_path / "ws"
    with mw.Workspace(ws_folder, user="alice") as ws:
        with ws.start_run("claims") as run:
            run.use_dataset(ws.log_dataset(train, name="train"), role="train")
            model = LogisticRegression().fit(train[["amount", "prior"]], train["y"])
            ws.register_model("claims", model=model, run=run, risk_tier="high",
                              input_example=train[["amount", "prior"]].head())
        ws.validate("claims/1", data=holdout, label="y", sensitive_features=["sex"],
                    n_bootstrap=30)
        ws.grant_role("bob", "validator")
    yield ws_folder


def cli(folder: Path, *args: str, user: str = "alice") -> Result:
    return runner.invoke(app, ["--workspace", str(folder), "--user", user, *args])


def run_json(folder: Path, *args: str, user: str = "alice") -> Any:
    result = cli(folder, *args, "--json", user=user)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_policy_apply_show_evaluate_and_promotion(folder: Path, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("name: prod\napplies_to: {risk_tiers: [high]}\nrules:\n"
                      "  - metric: roc_auc\n    min: 0.6\n"
                      "  - evidence: [held_out_validation]\n"
                      "  - approvals: {count: 1}\n")
    applied = run_json(folder, "policy", "apply", str(policy))
    assert (applied["name"], applied["version"]) == ("prod", 1)
    listed = cli(folder, "policy", "show")
    assert listed.exit_code == 0 and "prod" in listed.stdout
    shown = cli(folder, "policy", "show", "prod")
    assert shown.stdout == policy.read_text()

    evaluation = run_json(folder, "policy", "evaluate", "claims/1")
    rules = {r["rule"]: r["passed"] for r in evaluation["outcomes"][0]["rules"]}
    assert not evaluation["passed"] and rules["roc_auc >= 0.6"]
    assert not rules["1 approval(s) by a validator who is not the author"]
    table = cli(folder, "policy", "evaluate", "models:/claims/1")
    assert table.exit_code == 0 and "FAIL" in table.stdout

    refused = cli(folder, "models", "alias", "set", "claims", "production", "1",
                  "--reason", "ship")
    assert refused.exit_code == 1 and "approval" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    own = cli(folder, "approve", "claims/1", "--reason", "mine")
    assert own.exit_code == 1 and "validator" in own.stderr
    approved = run_json(folder, "approve", "claims/1", "--reason", "reviewed", user="bob")
    assert (approved["decision"], approved["actor"]) == ("approved", "bob")
    moved = cli(folder, "models", "alias", "set", "claims", "production", "1",
                "--reason", "ship")
    assert moved.exit_code == 0, moved.stderr
    rejected = cli(folder, "reject", "claims@production", "--reason", "leak found", user="bob")
    assert rejected.exit_code == 0 and "rejected" in rejected.stdout


def test_bad_policy_file_names_the_line(folder: Path, tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("name: prod\nrules:\n  - metric: accuracyy\n    min: 0.6\n")
    result = cli(folder, "policy", "apply", str(policy))
    assert result.exit_code == 1
    assert "line 3" in result.stderr and "unknown metric 'accuracyy'" in result.stderr
    missing = cli(folder, "policy", "apply", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 1 and "not found" in missing.stderr
    not_admin = cli(folder, "policy", "apply", "builtin:low-risk", user="bob")
    assert not_admin.exit_code == 1 and "admin" in not_admin.stderr


def test_roles_grant_revoke_list(folder: Path) -> None:
    assert cli(folder, "roles", "grant", "carol", "developer").exit_code == 0
    roles = run_json(folder, "roles", "list")
    assert {(r["user"], r["role"]) for r in roles} == {
        ("alice", "admin"), ("bob", "validator"), ("carol", "developer")}
    assert run_json(folder, "roles", "list", "bob")[0]["role"] == "validator"
    bad = cli(folder, "roles", "grant", "carol", "wizard")
    assert bad.exit_code == 1 and "unknown role" in bad.stderr
    denied = cli(folder, "roles", "grant", "bob", "admin", user="bob")
    assert denied.exit_code == 1 and "admin" in denied.stderr
    assert cli(folder, "roles", "revoke", "carol", "developer").exit_code == 0


def test_card_inventory_and_update(folder: Path, tmp_path: Path) -> None:
    updated = run_json(folder, "models", "update", "claims", "--purpose", "Triage claims",
                       "--vendor")
    assert updated["business_purpose"] == "Triage claims" and updated["vendor"] is True
    assert "review_overdue" in updated
    md = cli(folder, "models", "card", "claims/1")
    assert md.exit_code == 0 and "# Model card: claims version 1" in md.stdout
    out = tmp_path / "card.html"
    html = cli(folder, "models", "card", "claims/1", "--format", "html", "--out", str(out))
    assert html.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    card = json.loads(cli(folder, "models", "card", "claims/1", "-f", "json").stdout)
    assert card["model_details"]["business_purpose"] == "Triage claims"
    bad = cli(folder, "models", "card", "claims/1", "--format", "pdf")
    assert bad.exit_code == 1 and "format" in bad.stderr
    rows = list(csv.DictReader(io.StringIO(cli(folder, "models", "inventory").stdout)))
    assert [(r["model"], r["version"], r["validation_status"]) for r in rows] == [
        ("claims", "1", "validated")]
    as_json = json.loads(cli(folder, "models", "inventory", "--format", "json").stdout)
    assert as_json[0]["vendor"] is True
    listing = cli(folder, "models", "list")
    assert "validated" in listing.stdout
