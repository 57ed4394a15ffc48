"""Registry contract over SQLite and PostgreSQL: versions, aliases, loading, bad input."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelworks as mw


@pytest.fixture
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"amount": rng.normal(100, 20, 200), "prior": rng.integers(0, 5, 200)})
    y = pd.Series((x["amount"] + 10 * x["prior"] > 120).astype(int))
    return x, y


class Custom:
    """Not a format modelworks knows: only pickle can store it."""

    def predict(self, df: pd.DataFrame) -> list[int]:
        return [0] * len(df)


def _fit(x: pd.DataFrame, y: pd.Series) -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(x, y)


def test_register_load_and_predict(workspace: mw.Workspace, data: tuple) -> None:
    x, y = data
    with workspace.start_run(experiment="claims") as run:
        mv = workspace.register_model("claims-triage", model=_fit(x, y), run=run,
                                      input_example=x.head(), description="baseline",
                                      risk_tier="high", tags={"team": "risk"})
    assert (mv.name, mv.version, mv.format, mv.run_id) == ("claims-triage", 1, "sklearn", run.id)
    assert len(mv.sha256) == 64 and mv.status == "registered" and not mv.allow_pickle
    assert [c["name"] for c in mv.signature["inputs"]] == ["amount", "prior"]
    assert len(mv.input_example) == 5
    mv2 = workspace.register_model("claims-triage", model=_fit(x, y), input_example=x.head())
    assert mv2.version == 2
    model = workspace.load_model("models:/claims-triage/1")
    assert list(model.predict(x.head(3))) == list(_fit(x, y).predict(x.head(3)))
    with pytest.raises(mw.InvalidInput) as info:
        model.predict(x.drop(columns=["prior"]).assign(extra=1))
    assert "prior" in str(info.value) and "extra" in str(info.value)
    info_model = workspace.get_model("claims-triage")
    assert (info_model.risk_tier, info_model.tags, info_model.latest_version) == (
        "high", {"team": "risk"}, 2)
    graph = workspace.lineage("model_version", "claims-triage/1")
    assert [(e.parent.type, e.parent.id) for e in graph.edges] == [("run", run.id)]
    actions = {e.action for e in workspace.audit_log(limit=None)}
    assert {"model.created", "model_version.registered"} <= actions


def test_aliases_history_and_protection(workspace: mw.Workspace, data: tuple) -> None:
    x, y = data
    for _ in range(3):
        workspace.register_model("m", model=_fit(x, y), input_example=x.head())
    workspace.set_alias("m", "staging", 1, reason="first candidate")
    workspace.set_alias("m", "staging", 2, reason="better")
    assert workspace.resolve_model("models:/m@staging").version == 2
    assert workspace.load_model("m@staging").version.version == 2
    history = workspace.alias_history("m", "staging")
    assert [(h.version, h.previous_version, h.reason) for h in history] == [
        (1, None, "first candidate"), (2, 1, "better")]
    with pytest.raises(mw.PolicyViolation, match="no policy applies"):
        workspace.set_alias("m", "production", 2, reason="ship it")
    with pytest.raises(mw.InvalidInput, match="reason"):
        workspace.set_alias("m", "production", 2, force=True)
    workspace.set_alias("m", "production", 2, reason="admin override", force=True)
    assert workspace.alias_history("m", "production")[0].forced
    workspace.delete_alias("m", "staging", reason="done")
    with pytest.raises(mw.NotFound, match="alias 'staging'"):
        workspace.resolve_model("models:/m@staging")
    workspace.archive_model_version("m", 3, reason="superseded")
    with pytest.raises(mw.Conflict, match="archived"):
        workspace.set_alias("m", "staging", 3)
    with pytest.raises(mw.Conflict, match="production"):
        workspace.archive_model_version("m", 2)


def test_non_admin_cannot_force(db_location: tuple[str, str], data: tuple) -> None:
    location, artifacts = db_location
    admin = mw.Workspace(location, artifacts=artifacts, user="alice")
    x, y = data
    admin.register_model("m", model=_fit(x, y))
    bob = mw.Workspace(location, artifacts=artifacts, user="bob")
    with pytest.raises(mw.PermissionDenied, match="admin"):
        bob.set_alias("m", "production", 1, reason="me too", force=True)
    admin.close()
    bob.close()


def test_registry_bad_input(workspace: mw.Workspace, data: tuple) -> None:
    x, y = data
    with pytest.raises(mw.InvalidInput, match="allow_pickle"):
        workspace.register_model("custom", model=Custom())
    mv = workspace.register_model("custom", model=Custom(), allow_pickle=True)
    assert mv.allow_pickle and mv.format == "pickle"
    with pytest.raises(mw.InvalidInput, match="allow_pickle"):
        workspace.load_model("custom/1")
    assert workspace.load_model("custom/1", allow_pickle=True).predict(x.head(2)) == [0, 0]
    for bad in ("bad name!", "", "x" * 129):
        with pytest.raises(mw.InvalidInput, match="letters, digits"):
            workspace.register_model(bad, model=_fit(x, y))
    with pytest.raises(mw.InvalidInput, match="risk_tier"):
        workspace.register_model("m", model=_fit(x, y), risk_tier="extreme")
    with pytest.raises(mw.NotFound, match="no registered model"):
        workspace.get_model_version("nope", 1)
    with pytest.raises(mw.NotFound, match="no version 9"):
        workspace.get_model_version("custom", 9)
    with pytest.raises(mw.InvalidInput, match=r"models:/NAME"):
        workspace.load_model("s3://bucket/model")


def test_tampered_artifact_is_refused_and_audited(tmp_path: Path, data: tuple) -> None:
    ws = mw.Workspace(tmp_path / "ws", user="alice")
    x, y = data
    mv = ws.register_model("m", model=_fit(x, y))
    Path(ws.artifacts._path(mv.sha256)).write_bytes(b"not the model")
    with pytest.raises(mw.IntegrityError):
        ws.load_model("m/1")
    assert ws.audit_log(action="model_version.integrity_failed", limit=1)[0].entity_id == "m/1"
    assert ws.verify_audit().ok
    ws.close()


def test_list_models_prefix_and_tag(workspace: mw.Workspace, data: tuple) -> None:
    x, y = data
    model = _fit(x, y)
    for name, team in [("claims-a", "risk"), ("claims_b", "ops"), ("fraud", "risk")]:
        workspace.register_model(name, model=model, tags={"team": team})
    assert [m.name for m in workspace.list_models(prefix="claims")] == ["claims-a", "claims_b"]
    assert [m.name for m in workspace.list_models(prefix="claims_")] == ["claims_b"]
    assert [m.name for m in workspace.list_models(tag="team=risk")] == ["claims-a", "fraud"]
    with pytest.raises(mw.InvalidInput, match="KEY=VALUE"):
        workspace.list_models(tag="team")


def _register(location: str, artifacts: str, n: int) -> list[int]:
    rng = np.random.default_rng(n)
    x = pd.DataFrame({"a": rng.normal(size=50)})
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    ws = mw.Workspace(location, artifacts=artifacts, user=f"w{n}")
    out = [ws.register_model("shared", model=model).version for _ in range(3)]
    ws.close()
    return out


@pytest.mark.slow
def test_four_processes_get_gapless_versions(db_location: tuple[str, str]) -> None:
    location, artifacts = db_location
    mw.Workspace(location, artifacts=artifacts, user="admin").close()
    with mp.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_register, [(location, artifacts, i) for i in range(4)])
    versions = sorted(v for r in results for v in r)
    assert versions == list(range(1, 13))
    ws = mw.Workspace(location, artifacts=artifacts, user="admin")
    assert [v.version for v in ws.model_versions("shared")] == list(range(1, 13))
    assert ws.verify_audit().ok
    ws.close()
