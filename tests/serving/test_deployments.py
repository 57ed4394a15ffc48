"""Deployments over SQLite and PostgreSQL: traffic splits, the gate rule, promote, rollback,
disable, history and audit; sticky routing as pure functions; the ``deploy`` CLI."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

import modelworks as mw
from modelworks.cli.main import app
from modelworks.serving.deployments import (
    Deployment,
    DeploymentDisabled,
    Route,
    choose,
    shadows_of,
)

POLICY = "name: release\nrules:\n  - approvals: {count: 1, role: validator}\n"


def _register(ws: mw.Workspace, count: int, name: str = "claims") -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] + rng.normal(0, 0.5, 60) > 0).astype(int)
    for i in range(count):
        ws.register_model(name, model=LogisticRegression(C=1.0 + i).fit(x, y))


def _other(ws: mw.Workspace, user: str) -> mw.Workspace:
    return mw.Workspace(ws.location.db_url, artifacts=ws.location.artifacts, user=user)


@pytest.fixture
def governed(workspace: mw.Workspace, tmp_path: Path) -> Iterator[tuple[mw.Workspace,
                                                                         mw.Workspace]]:
    """claims v1..v3; a policy needing one validator's approval; bob (validator) approved
    v1 and v2; production → v1."""
    _register(workspace, 3)
    policy = tmp_path / "release.yaml"
    policy.write_text(POLICY)
    workspace.apply_policy(policy)
    workspace.grant_role("bob", "validator")
    bob = _other(workspace, "bob")
    bob.approve("claims/1", reason="ok")
    bob.approve("claims/2", reason="ok")
    workspace.set_alias("claims", "production", 1, reason="first release")
    try:
        yield workspace, bob
    finally:
        bob.close()


def test_canary_on_production_alias_promote_and_rollback_through_the_gate(governed) -> None:
    ws, bob = governed
    dep = ws.create_deployment("claims", model="claims@production", canary="claims/2",
                               percent=10, shadows=["claims/3"], reason="canary v2")
    assert dep.routes == [Route(model="models:/claims@production", weight=90),
                          Route(model="models:/claims/2", weight=10)]
    assert dep.shadows == ["models:/claims/3"]  # shadows never answer: no gate
    assert ws.policy_evaluations("claims/2")[0].passed  # the gate's pass is on the record

    # the gate rule: an unapproved pinned version cannot gain traffic on this endpoint
    with pytest.raises(mw.PolicyViolation, match=r"models:/claims/3: release: .*approval"):
        ws.set_traffic("claims", {"claims@production": 80, "claims/3": 20}, reason="try")
    assert not ws.policy_evaluations("claims/3")[0].passed  # the refusal too
    with pytest.raises(mw.PolicyViolation, match="claims/3"):
        ws.create_deployment("other", model="claims@production", canary="claims/3",
                             percent=5)
    ws.set_alias("claims", "staging", 3, reason="candidate")
    with pytest.raises(mw.PolicyViolation, match=r"unprotected alias.*pin a version"):
        ws.create_deployment("other", model="claims@production", canary="claims@staging",
                             percent=5)
    with pytest.raises(mw.PolicyViolation, match="claims/3"):
        ws.disable_deployment("claims", reason="incident", fallback="claims/3")
    ws.set_traffic("claims", {"claims/2": 20, "models:/claims@production": 80},
                   reason="more canary")
    assert ws.get_deployment("claims").main.model == "models:/claims@production"

    # the alias move goes through the registry, so the gate refuses a rejected version
    bob.reject("claims/2", reason="calibration drifted")
    with pytest.raises(mw.PolicyViolation, match="rejected"):
        ws.promote_deployment("claims", reason="ship v2")
    assert ws.resolve_model("claims@production").version == 1
    assert ws.deployment_history("claims")[-1].action == "traffic_changed"
    bob.approve("claims/2", reason="recalibrated")

    promoted = ws.promote_deployment("claims", reason="ship v2")
    assert promoted.routes == [Route(model="models:/claims@production", weight=100)]
    assert ws.resolve_model("claims@production").version == 2
    last = ws.deployment_history("claims")[-1]
    assert last.action == "promoted" and last.reason == "ship v2"
    assert last.alias_change is not None
    assert (last.alias_change.previous_version, last.alias_change.version) == (1, 2)
    move = ws.alias_history("claims", "production")[-1]
    assert move.version == 2 and "deployment 'claims'" in (move.reason or "")

    # rolling back moves the alias back through the gate, which may refuse
    bob.reject("claims/1", reason="found a leak in v1")
    with pytest.raises(mw.PolicyViolation, match="rejected"):
        ws.rollback_deployment("claims", reason="v2 misbehaves")
    assert ws.resolve_model("claims@production").version == 2
    assert ws.get_deployment("claims").routes == promoted.routes
    carol = _other(ws, "carol")
    try:
        with pytest.raises(mw.PermissionDenied, match="admin"):
            carol.rollback_deployment("claims", reason="me", force=True)
    finally:
        carol.close()
    back = ws.rollback_deployment("claims", reason="incident 12: back to v1", force=True)
    assert back.routes == [Route(model="models:/claims@production", weight=80),
                           Route(model="models:/claims/2", weight=20)]
    assert ws.resolve_model("claims@production").version == 1
    rolled = ws.deployment_history("claims")[-1]
    assert rolled.action == "rolled_back" and rolled.forced and rolled.undoes == last.id
    assert {"model_alias.break_glass", "deployment.break_glass"} <= {
        e.action for e in ws.audit_log(limit=20)}


def test_promote_pinned_main_and_rollback_walks_back(workspace: mw.Workspace) -> None:
    _register(workspace, 3)
    workspace.create_deployment("solo", model="claims/1")
    with pytest.raises(mw.Conflict, match="0 canaries"):
        workspace.promote_deployment("solo", reason="nothing to promote")

    def split(*pairs: tuple[int, float]) -> list[Route]:
        return [Route(model=f"models:/claims/{v}", weight=w) for v, w in pairs]

    workspace.create_deployment("fraud", model="claims/1", canary="claims/2", percent=50)
    workspace.set_traffic("fraud", [Route(model="claims/1", weight=70),
                                    Route(model="claims/2", weight=30)], reason="calmer")
    workspace.set_traffic("fraud", {"claims/1": 40, "claims/2": 30, "claims/3": 30},
                          reason="three")
    with pytest.raises(mw.Conflict, match="2 canaries"):
        workspace.promote_deployment("fraud", reason="which?")
    workspace.set_traffic("fraud", [("claims/1", 70), ("claims/2", 0), ("claims/3", 30)],
                          reason="park v2")
    promoted = workspace.promote_deployment("fraud", reason="v3 wins")
    assert promoted.routes == split((3, 100), (2, 0))  # the pinned main entry is replaced
    assert workspace.resolve_model("claims/3").aliases == []  # no alias to move

    steps = [workspace.rollback_deployment("fraud", reason="undo").routes for _ in range(4)]
    assert steps == [split((1, 70), (2, 0), (3, 30)), split((1, 40), (2, 30), (3, 30)),
                     split((1, 70), (2, 30)), split((1, 50), (2, 50))]
    with pytest.raises(mw.Conflict, match="no earlier change"):
        workspace.rollback_deployment("fraud", reason="again")
    undone = [e.undoes for e in workspace.deployment_history("fraud") if e.undoes]
    assert len(undone) == 4 and undone == sorted(undone, reverse=True)


def test_promote_alias_main_without_protection_and_alias_moved_elsewhere(
        workspace: mw.Workspace) -> None:
    _register(workspace, 3)
    workspace.set_alias("claims", "champion", 1, reason="start")
    workspace.create_deployment("ep", model="claims@champion", canary="claims/2", percent=10)
    workspace.promote_deployment("ep", reason="v2")
    assert workspace.resolve_model("claims@champion").version == 2
    workspace.set_alias("claims", "champion", 3, reason="someone else")
    with pytest.raises(mw.Conflict, match="at version 3"):
        workspace.rollback_deployment("ep", reason="undo")
    workspace.set_alias("claims", "champion", 1, reason="by hand")
    back = workspace.rollback_deployment("ep", reason="undo")  # the alias is back: no move
    assert [r.model for r in back.routes] == ["models:/claims@champion", "models:/claims/2"]
    assert workspace.deployment_history("ep")[-1].alias_change is None
    _register(workspace, 1, name="other")
    workspace.create_deployment("mixed", model="claims@champion", canary="other/1", percent=5)
    with pytest.raises(mw.Conflict, match="not a version of claims"):
        workspace.promote_deployment("mixed", reason="cross-model")


def test_disable_enable_and_fallback(workspace: mw.Workspace) -> None:
    _register(workspace, 2)
    workspace.create_deployment("ep", model="claims/1", shadows=["claims/2"])
    off = workspace.disable_deployment("ep", reason="incident 4: bad inputs upstream")
    with pytest.raises(DeploymentDisabled, match="incident 4") as raised:
        choose(off, "user-1")
    assert raised.value.reason == "incident 4: bad inputs upstream"
    assert shadows_of(off) == []
    assert workspace.disable_deployment("ep", reason="incident 4: bad inputs upstream") == off
    routed = workspace.disable_deployment("ep", reason="serve v2 meanwhile",
                                          fallback="claims/2")
    assert {choose(routed, f"k{i}") for i in range(50)} == {"models:/claims/2"}
    with pytest.raises(mw.InvalidInput) as bad:
        workspace.disable_deployment("ep", reason=" ")
    assert bad.value.field == "reason"
    on = workspace.enable_deployment("ep", reason="fixed")
    assert (on.status, on.fallback, on.disabled_reason) == ("active", None, None)
    assert choose(on, "user-1") == "models:/claims/1" and shadows_of(on) == ["models:/claims/2"]
    workspace.enable_deployment("ep", reason="again")  # already on: nothing recorded
    actions = [e.action for e in workspace.deployment_history("ep")]
    assert actions == ["created", "disabled", "disabled", "enabled"]
    audited = workspace.audit_log(entity_type="deployment", entity_id="ep", limit=None)
    assert [e.action for e in audited] == ["deployment.enabled", "deployment.disabled",
                                           "deployment.disabled", "deployment.created"]
    assert audited[1].payload["fallback"] == "models:/claims/2"
    assert audited[1].payload["previous"]["status"] == "disabled"
    assert workspace.verify_audit().ok
    graduated = workspace.set_traffic("ep", {"claims/1": 90, "claims/2": 10},
                                      reason="v2 answers now")
    assert graduated.shadows == []  # a shadow given a route stops being a shadow


def test_history_audit_and_listing(workspace: mw.Workspace) -> None:
    _register(workspace, 3)
    workspace.create_deployment("b", model="claims/1", reason="first endpoint")
    workspace.create_deployment("a", model="claims/1", canary="claims/2", percent=25)
    workspace.set_shadows("a", ["claims/3"], reason="try v3 quietly")
    workspace.set_traffic("a", {"claims/1": 75, "claims/2": 25}, reason="same")  # no change
    assert [d.name for d in workspace.deployments()] == ["a", "b"]
    history = workspace.deployment_history("a")
    assert [(e.action, e.actor) for e in history] == [("created", "alice"),
                                                       ("shadows_changed", "alice")]
    assert history[1].shadows == ["models:/claims/3"] and history[1].reason == "try v3 quietly"
    events = workspace.audit_log(entity_type="deployment", limit=None)
    assert [(e.entity_id, e.action) for e in events] == [
        ("a", "deployment.shadows_changed"), ("a", "deployment.created"),
        ("b", "deployment.created")]
    assert events[2].reason == "first endpoint"
    assert workspace.rollback_deployment("a", reason="no shadow").shadows == []


def _field(exc: pytest.ExceptionInfo[mw.InvalidInput]) -> str | None:
    return exc.value.field


def test_bad_input_names_the_field(workspace: mw.Workspace) -> None:
    _register(workspace, 2)
    ws = workspace
    with pytest.raises(mw.NotFound, match=r"model: models:/claims/7: .*no version 7"):
        ws.create_deployment("ep", model="claims/7")
    with pytest.raises(mw.NotFound, match="canary: models:/nope@production"):
        ws.create_deployment("ep", model="claims/1", canary="nope@production", percent=5)
    with pytest.raises(mw.NotFound, match=r"shadows\[0\]: models:/claims@staging"):
        ws.create_deployment("ep", model="claims/1", shadows=["claims@staging"])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "a b", "model": "claims/1"}, "name"),
        ({"name": "ep", "model": "claims"}, "model"),
        ({"name": "ep", "model": "claims/1", "canary": "claims/2", "percent": 150}, "percent"),
        ({"name": "ep", "model": "claims/1", "canary": "claims/2", "percent": -1}, "percent"),
        ({"name": "ep", "model": "claims/1", "canary": "claims/2", "percent": True}, "percent"),
        ({"name": "ep", "model": "claims/1", "percent": 10}, "percent"),
        ({"name": "ep", "model": "claims/1", "canary": "models:/claims/1"}, "canary"),
        ({"name": "ep", "model": "claims/1", "shadows": ["claims/2", "claims/2"]}, "shadows"),
        ({"name": "ep", "model": "claims/1", "shadows": "claims/2"}, "shadows"),
    ]
    for kwargs, field in cases:
        with pytest.raises(mw.InvalidInput) as bad:
            ws.create_deployment(**kwargs)
        assert _field(bad) == field, (kwargs, str(bad.value))
    ws.create_deployment("ep", model="claims/1")
    with pytest.raises(mw.Conflict, match="already exists"):
        ws.create_deployment("ep", model="claims/2")
    with pytest.raises(mw.NotFound, match=r"no deployment named 'nope' .*ep"):
        ws.get_deployment("nope")
    with pytest.raises(mw.NotFound, match="nope"):
        ws.promote_deployment("nope", reason="x")
    routes_cases: list[tuple[Any, str]] = [
        ({"claims/1": 60, "claims/2": 30}, "routes"),
        ({"claims/1": 110, "claims/2": -10}, "routes[0].weight"),
        ({"claims/1": float("nan"), "claims/2": 100}, "routes[0].weight"),
        ({}, "routes"),
        ({"claims@": 100}, "routes[0].model"),
        ([Route(model="claims/1", weight=50), Route(model="models:/claims/1", weight=50)],
         "routes"),
        (["claims/1"], "routes"),
    ]
    for routes, field in routes_cases:
        with pytest.raises(mw.InvalidInput) as bad:
            ws.set_traffic("ep", routes, reason="x")
        assert _field(bad) == field, (routes, str(bad.value))
    with pytest.raises(mw.InvalidInput) as bad:
        ws.set_traffic("ep", {"claims/1": 100}, reason="")
    assert _field(bad) == "reason"
    with pytest.raises(mw.NotFound, match=r"routes\[1\].model: models:/claims/9"):
        ws.set_traffic("ep", {"claims/1": 50, "claims/9": 50}, reason="x")
    ws.archive_model_version("claims", 2)
    with pytest.raises(mw.Conflict, match="archived"):
        ws.set_traffic("ep", {"claims/1": 50, "claims/2": 50}, reason="x")
    assert [e.action for e in ws.deployment_history("ep")] == ["created"]


# --- routing: pure functions, no database ------------------------------------------------


def _deployment(routes: list[tuple[str, float]], **extra: Any) -> Deployment:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "name": "ep", "status": "active", "shadows": [], "fallback": None,
        "disabled_reason": None, "created_at": now, "created_by": "t", "updated_at": now,
        "updated_by": "t", **extra}
    return Deployment(routes=[Route(model=m, weight=w) for m, w in routes], **fields)


def test_sticky_routing_is_deterministic_and_splits_by_weight() -> None:
    ten = _deployment([("models:/m@production", 90), ("models:/m/4", 10)])
    keys = [f"user-{i}" for i in range(20_000)]
    first = [choose(ten, k) for k in keys]
    assert first == [choose(ten.model_copy(), k) for k in keys]  # same key, same answer
    share = Counter(first)["models:/m/4"] / len(keys)
    assert 0.08 < share < 0.12

    # raising the canary's share only moves keys onto the canary, never off it
    twenty = _deployment([("models:/m@production", 80), ("models:/m/4", 20)])
    second = [choose(twenty, k) for k in keys]
    assert all(b == "models:/m/4" for a, b in zip(first, second, strict=True)
               if a == "models:/m/4")
    assert 0.18 < Counter(second)["models:/m/4"] / len(keys) < 0.22

    # without a key: random by weight; a zero-weight route never answers
    three = _deployment([("models:/m/1", 50), ("models:/m/2", 0), ("models:/m/3", 50)])
    rng = random.Random(7)
    counts = Counter(choose(three, None, rng) for _ in range(10_000))
    assert counts["models:/m/2"] == 0 and 0.46 < counts["models:/m/1"] / 10_000 < 0.54
    assert Counter(choose(three, None) for _ in range(1_000))["models:/m/3"] > 350


def test_disabled_routing_pure() -> None:
    off = _deployment([("models:/m/1", 100)], status="disabled", disabled_reason="maintenance",
                      shadows=["models:/m/2"])
    with pytest.raises(DeploymentDisabled, match="'ep' is disabled: maintenance"):
        choose(off, None)
    assert shadows_of(off) == []
    fallback = off.model_copy(update={"fallback": "models:/m/0"})
    assert choose(fallback, "k") == choose(fallback, None) == "models:/m/0"


# --- the CLI -------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)
    ws_folder = tmp_path / "ws"
    with mw.Workspace(ws_folder, user="alice") as ws:
        _register(ws, 3)
        ws.set_alias("claims", "champion", 1, reason="start")
    return ws_folder


def cli(folder: Path, *args: str) -> Result:
    return runner.invoke(app, ["--workspace", str(folder), "--user", "alice", *args])


def run_json(folder: Path, *args: str) -> Any:
    result = cli(folder, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_deploy_cli(folder: Path) -> None:
    created = run_json(folder, "deploy", "create", "claims", "--model", "claims@champion",
                       "--canary", "claims/2", "--percent", "10", "--shadow", "claims/3",
                       "--reason", "canary")
    assert created["routes"] == [{"model": "models:/claims@champion", "weight": 90.0},
                                 {"model": "models:/claims/2", "weight": 10.0}]
    assert created["shadows"] == ["models:/claims/3"]
    traffic = cli(folder, "deploy", "traffic", "claims", "--route", "claims@champion=75",
                  "--route", "claims/2=25", "--reason", "more")
    assert traffic.exit_code == 0 and "claims/2 25%" in traffic.stdout
    promoted = run_json(folder, "deploy", "promote", "claims", "--reason", "v2 wins")
    assert promoted["routes"] == [{"model": "models:/claims@champion", "weight": 100.0}]
    shown = run_json(folder, "deploy", "show", "claims")
    assert [e["action"] for e in shown["history"]] == ["created", "traffic_changed",
                                                       "promoted"]
    assert shown["history"][-1]["alias_change"]["version"] == 2
    table = cli(folder, "deploy", "show", "claims")
    assert table.exit_code == 0 and "champion 1→2" in table.stdout
    rolled = run_json(folder, "deploy", "rollback", "claims", "--reason", "undo")
    assert len(rolled["routes"]) == 2
    off = run_json(folder, "deploy", "disable", "claims", "--reason", "incident",
                   "--fallback", "claims/1")
    assert (off["status"], off["fallback"]) == ("disabled", "models:/claims/1")
    listed = cli(folder, "deploy", "list")
    assert listed.exit_code == 0 and "incident" in listed.stdout
    assert run_json(folder, "deploy", "enable", "claims", "--reason", "ok")["status"] == "active"
    assert [d["name"] for d in run_json(folder, "deploy", "list")] == ["claims"]
    history = run_json(folder, "deploy", "history", "claims")
    assert [e["action"] for e in history][-3:] == ["rolled_back", "disabled", "enabled"]
    cleared = run_json(folder, "deploy", "shadows", "claims", "--reason", "no shadow")
    assert cleared["shadows"] == []

    bad = cli(folder, "deploy", "traffic", "claims", "--route", "claims/1=60", "--reason", "x")
    assert bad.exit_code == 1 and "sum to 100" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli(folder, "deploy", "traffic", "claims", "--route", "claims/1", "--reason", "x")
    assert bad.exit_code == 1 and "URI=PERCENT" in bad.stderr
    bad = cli(folder, "deploy", "create", "claims", "--model", "claims/1")
    assert bad.exit_code == 1 and "already exists" in bad.stderr
    bad = cli(folder, "deploy", "create", "x", "--model", "claims/9")
    assert bad.exit_code == 1 and "models:/claims/9" in bad.stderr
    bad = cli(folder, "deploy", "show", "nope")
    assert bad.exit_code == 1 and "no deployment named 'nope'" in bad.stderr
    # the short form works; the audit says no reason was given
    short = cli(folder, "deploy", "promote", "claims")
    assert short.exit_code in (0, 1) and "Usage" not in short.stderr
    if short.exit_code == 0:
        history = run_json(folder, "deploy", "history", "claims")
        assert history[-1]["reason"] == "no reason given"
    forced = cli(folder, "deploy", "rollback", "claims", "--force")
    assert forced.exit_code == 1 and "reason" in forced.stderr
