"""record_versions: many versions in one transaction, as one registration each would give."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import func, select

import modelworks as mw
from modelworks.errors import InvalidInput, NotFound
from modelworks.registry.models import NewVersion, record_versions
from modelworks.store.tables import audit_events, model_versions, registered_models


def entry(name: str, ref: Any, **extra: Any) -> NewVersion:
    return NewVersion(name=name, sha256=ref.sha256, size=ref.size, fmt="sklearn",
                      library="scikit-learn", library_version="1", allow_pickle=False, **extra)


def stored(ws: mw.Workspace, seed: int = 0) -> Any:
    x = np.random.default_rng(seed).normal(size=(20, 2))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    from modelworks.registry.formats import save_model

    return ws.ctx.artifacts.put_bytes(save_model(model).data)


def counts(ws: mw.Workspace) -> tuple[int, int, int]:
    with ws.db.read() as conn:
        models, versions, events = (
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (registered_models, model_versions, audit_events))
    return models, versions, events


def test_a_batch_numbers_versions_per_model_and_audits_each(workspace: mw.Workspace) -> None:
    ref = stored(workspace)
    workspace.register_model("old", model=LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    with workspace.start_run("bulk") as run:
        pass
    batch = [entry("new-b", ref, run_id=run.id, tags={"group": "b"}, model_description="B"),
             entry("old", ref, run_id=run.id),
             entry("new-a", ref, tags={"group": "a"}, risk_tier="high"),
             entry("new-b", ref, run_id=run.id, description="second of b in this batch")]
    with workspace.db.write() as conn:
        versions = record_versions(workspace.ctx, conn, batch)

    assert versions == [1, 2, 1, 2]
    b = workspace.get_model("new-b")
    assert (b.tags, b.description, b.risk_tier) == ({"group": "b"}, "B", "medium")
    assert workspace.get_model("new-a").risk_tier == "high"
    assert workspace.get_model_version("new-b", 2).description == "second of b in this batch"
    assert workspace.get_model_version("old", 2).run_id == run.id
    # one model.created per new model, one model_version.registered per version, chained
    created = workspace.audit_log(action="model.created", limit=None)
    assert {e.entity_id for e in created} >= {"new-a", "new-b"}
    registered = [e.entity_id for e in reversed(
        workspace.audit_log(action="model_version.registered", limit=4))]
    assert registered == ["new-b/1", "old/2", "new-a/1", "new-b/2"]
    assert workspace.verify_audit().ok
    # lineage: each version with a run was trained by it
    parents = workspace.lineage("model_version", "new-b/2").edges
    assert [(e.parent.type, e.parent.id, e.relation) for e in parents] == [
        ("run", run.id, "trained_by")]
    assert workspace.lineage("model_version", "new-a/1").edges == []


@pytest.mark.parametrize("bad, field", [
    ({"name": "bad name!"}, "name"),
    ({"risk_tier": "extreme"}, "risk_tier"),
    ({"tags": ["not", "a", "mapping"]}, "tags"),
])
def test_one_bad_entry_refuses_the_batch_and_writes_nothing(
        workspace: mw.Workspace, bad: dict[str, Any], field: str) -> None:
    ref = stored(workspace)
    before = counts(workspace)
    good = entry("fine", ref)
    broken = NewVersion(**{**good.__dict__, **bad})
    with pytest.raises(InvalidInput) as info, workspace.db.write() as conn:
        record_versions(workspace.ctx, conn, [good, broken])
    assert info.value.field == field
    assert counts(workspace) == before


def test_an_unknown_run_is_refused_and_nothing_is_written(workspace: mw.Workspace) -> None:
    ref = stored(workspace)
    before = counts(workspace)
    with pytest.raises(NotFound, match="no run with id 'nope'"), workspace.db.write() as conn:
        record_versions(workspace.ctx, conn, [entry("fine", ref), entry("x", ref, run_id="nope")])
    assert counts(workspace) == before


def _bulk(location: str, artifacts: str, worker: int) -> list[tuple[str, int]]:
    ws = mw.Workspace(location, artifacts=artifacts, user=f"w{worker}")
    ref = stored(ws)
    names = [f"m-{i:02d}" for i in range(12)]
    if worker % 2:
        names.reverse()  # opposite orders: must wait, not deadlock
    out: list[tuple[str, int]] = []
    for _ in range(3):
        batch = [entry(n, ref) for n in names]
        out += zip(names, ws.db.write_retrying(
            lambda conn, batch=batch: record_versions(ws.ctx, conn, batch)), strict=True)
    ws.close()
    return out


@pytest.mark.slow
def test_concurrent_batches_get_gapless_versions(db_location: tuple[str, str]) -> None:
    location, artifacts = db_location
    mw.Workspace(location, artifacts=artifacts, user="admin").close()
    with mp.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_bulk, [(location, artifacts, i) for i in range(3)])
    by_model: dict[str, list[int]] = {}
    for name, version in (pair for result in results for pair in result):
        by_model.setdefault(name, []).append(version)
    assert {name: sorted(v) for name, v in by_model.items()} == {
        f"m-{i:02d}": list(range(1, 10)) for i in range(12)}
    ws = mw.Workspace(location, artifacts=artifacts, user="admin")
    assert [v.version for v in ws.model_versions("m-05")] == list(range(1, 10))
    assert ws.verify_audit().ok
    ws.close()
