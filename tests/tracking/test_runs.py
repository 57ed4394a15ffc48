"""Tracking contract: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import modelworks as mw


def test_run_lifecycle_records_everything(workspace: mw.Workspace, tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "plots" / "sub").mkdir()
    (tmp_path / "plots" / "sub" / "pr.txt").write_text("pr")
    with workspace.start_run(experiment="claims", name="rf-1", params={"n_estimators": 200},
                             tags={"team": "risk"}) as run:
        run.log_param("max_depth", 8)
        run.log_metric("loss", 0.31, step=1)
        run.log_metrics({"loss": 0.2, "auc": 0.91}, step=2)
        run.set_tag("stage", "baseline")
        entries = run.log_artifact(tmp_path / "plots")
        run.log_artifact(tmp_path / "plots" / "roc.png", artifact_path="figures")
    assert sorted(e.path for e in entries) == ["plots/roc.png", "plots/sub/pr.txt"]
    rec = workspace.get_run(run.id)
    assert rec.status == "FINISHED" and rec.end_time is not None
    assert rec.params == {"n_estimators": "200", "max_depth": "8"}
    assert rec.tags == {"team": "risk", "stage": "baseline"}
    assert rec.metrics == {"loss": 0.2, "auc": 0.91}
    assert rec.metric_count == 3
    assert rec.actor == "alice" and rec.python_version and len(rec.packages_hash) == 64
    assert {a.path for a in rec.artifacts} == {"plots/roc.png", "plots/sub/pr.txt",
                                               "figures/roc.png"}
    png = next(a for a in rec.artifacts if a.path == "figures/roc.png")
    assert workspace.artifacts.get_bytes(png.sha256) == b"\x89PNG fake"
    actions = [e.action for e in workspace.audit_log(entity_id=run.id, limit=None)]
    assert actions[0] == "run.ended" and actions[-1] == "run.created"
    assert {"run.params_logged", "run.tags_set", "run.artifacts_logged"} <= set(actions)
    ended = workspace.audit_log(action="run.ended", limit=1)[0]
    assert ended.payload["metric_points"] == 3
    assert workspace.verify_audit().ok


def test_exception_marks_run_failed_and_propagates(workspace: mw.Workspace) -> None:
    with pytest.raises(ZeroDivisionError), workspace.start_run(experiment="e") as run:
        run.log_metric("x", 1.0)
        _ = 1 / 0
    rec = workspace.get_run(run.id)
    assert rec.status == "FAILED"
    assert rec.error is not None and "ZeroDivisionError" in rec.error
    assert rec.metric_count == 1


def test_params_are_immutable(workspace: mw.Workspace) -> None:
    with workspace.start_run(experiment="e", params={"a": 1}) as run:
        run.log_param("a", 1)  # the same value again is fine
        before = len(workspace.audit_log(limit=None))
        with pytest.raises(mw.Conflict, match="param 'a'"):
            run.log_param("a", 2)
        # the refused change left no trace in the audit log
        assert len(workspace.audit_log(limit=None)) == before
    assert workspace.get_run(run.id).params == {"a": "1"}


def test_finished_run_cannot_change(workspace: mw.Workspace) -> None:
    with workspace.start_run(experiment="e") as run:
        pass
    with pytest.raises(mw.Conflict):
        run.log_param("late", 1)
    with pytest.raises(mw.Conflict):
        run.log_metric("late", 1.0)


def test_nan_and_inf_are_stored_faithfully(workspace: mw.Workspace) -> None:
    with workspace.start_run(experiment="e") as run:
        run.log_metric("m", float("nan"), step=0)
        run.log_metric("m", float("inf"), step=1)
        run.log_metric("m", float("-inf"), step=2)
        run.log_metric("m", 1.5, step=3)
    values = [p.value for p in workspace.metric_history(run.id, "m")]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1.5]


def test_bad_metric_values_are_refused(workspace: mw.Workspace) -> None:
    with workspace.start_run(experiment="e") as run:
        for bad in ("0.3", None, [1.0], True):
            with pytest.raises(mw.InvalidInput, match="'loss'") as info:
                run.log_metric("loss", bad)  # type: ignore[arg-type]
            assert info.value.field == "value"
        with pytest.raises(mw.InvalidInput, match="step"):
            run.log_metric("loss", 1.0, step=1.5)  # type: ignore[arg-type]


def test_metric_history_order_and_downsampling(workspace: mw.Workspace) -> None:
    with workspace.start_run(experiment="e") as run:
        for step in reversed(range(1000)):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    points = workspace.metric_history(run.id, "loss")
    assert [p.step for p in points] == list(range(1000))
    sampled = workspace.metric_history(run.id, "loss", max_points=10)
    assert len(sampled) == 10 and sampled[0].step == 0 and sampled[-1].step == 999
    assert [p.step for p in sampled] == sorted(p.step for p in sampled)
    with pytest.raises(mw.NotFound):
        workspace.metric_history("0" * 32, "loss")


def test_nested_runs(workspace: mw.Workspace) -> None:
    with workspace.start_run(experiment="hpo", name="study") as parent:
        for i in range(3):
            with workspace.start_run(parent=parent, name=f"trial-{i}") as child:
                child.log_metric("score", i / 10)
    children = workspace.search_runs(parent=parent, order_by=["metrics.score DESC"])
    assert [c.name for c in children] == ["trial-2", "trial-1", "trial-0"]
    assert all(c.parent_id == parent.id and c.experiment == "hpo" for c in children)
    with pytest.raises(mw.NotFound, match="parent"):
        workspace.start_run(experiment="hpo", parent="f" * 32)


def _seed(ws: mw.Workspace) -> dict[str, str]:
    ids = {}
    for name, model, auc in [("a", "rf", 0.95), ("b", "rf", 0.7), ("c", "gb", 0.85),
                             ("d", "lr", 0.81), ("e", "rf", 0.82)]:
        with ws.start_run(experiment="claims", name=name, params={"model": model}) as run:
            run.log_metric("auc", auc)
        ids[name] = run.id
    with ws.start_run(experiment="other", name="z", params={"model": "rf"}) as run:
        run.log_metric("auc", 0.99)
    return ids


def test_search_runs_filter_order_limit(workspace: mw.Workspace) -> None:
    _seed(workspace)
    found = workspace.search_runs(
        experiment="claims", filter="metrics.auc > 0.8 and params.model = 'rf'",
        order_by=["metrics.auc DESC"], limit=100)
    assert [r.name for r in found] == ["a", "e"]
    top2 = workspace.search_runs(experiment="claims", order_by=["metrics.auc"], limit=2)
    assert [r.name for r in top2] == ["b", "d"]
    assert {r.name for r in workspace.search_runs(filter="params.model IN ('gb', 'lr')")} == {
        "c", "d"}
    assert {r.name for r in workspace.search_runs(filter="attributes.name LIKE 'z%'")} == {"z"}
    assert len(workspace.search_runs(experiment=["claims", "other"])) == 6
    assert workspace.search_runs(filter="attributes.status = 'RUNNING'") == []


def test_search_runs_rejects_bad_input(workspace: mw.Workspace) -> None:
    _seed(workspace)
    with pytest.raises(mw.InvalidInput, match="position 12") as info:
        workspace.search_runs(filter="metrics.auc foo 3")
    assert info.value.field == "filter" and info.value.position == 12
    with pytest.raises(mw.NotFound, match="no experiment"):
        workspace.search_runs(experiment="nope")
    with pytest.raises(mw.InvalidInput, match="limit"):
        workspace.search_runs(limit=0)
    # a filter value never reaches SQL as text: quotes and semicolons are just data
    assert workspace.search_runs(filter="params.model = 'x\\'; DROP TABLE mw_runs; --'") == []
    assert len(workspace.search_runs()) == 6


def test_unknown_ids_are_not_found(workspace: mw.Workspace) -> None:
    with pytest.raises(mw.NotFound, match="no run"):
        workspace.get_run("deadbeef")
    with pytest.raises(mw.NotFound, match="no experiment"):
        workspace.get_experiment("nope")
    with pytest.raises(mw.InvalidInput, match="experiment"):
        workspace.start_run(experiment="")


def test_run_uses_dataset_lineage(workspace: mw.Workspace) -> None:
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    ds = workspace.log_dataset(df, name="train")
    with workspace.start_run(experiment="e") as run:
        run.use_dataset(ds, role="train")
    graph = workspace.lineage("run", run.id)
    assert [(e.parent.type, e.parent.id) for e in graph.edges] == [
        ("dataset_version", str(ds.id))]
    assert workspace.get_run(run.id).datasets[0].role == "train"
    with workspace.start_run(experiment="e") as run2, pytest.raises(mw.InvalidInput):
        run2.use_dataset(ds, role=" ")


def test_experiments_listing(workspace: mw.Workspace) -> None:
    _seed(workspace)
    exps = {e.name: e.run_count for e in workspace.list_experiments()}
    assert exps == {"claims": 5, "other": 1}


def test_read_and_download_artifacts(workspace: mw.Workspace, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("alpha")
    (tmp_path / "out" / "b.txt").write_text("beta")
    with workspace.start_run(experiment="e") as run:
        run.log_artifact(tmp_path / "out", artifact_path="reports")
    assert workspace.read_artifact(run.id, "reports/a.txt") == b"alpha"
    with pytest.raises(mw.NotFound, match="no artifact"):
        workspace.read_artifact(run.id, "reports/zzz.txt")
    with pytest.raises(mw.InvalidInput):
        workspace.read_artifact(run.id, "../etc/passwd")
    files = workspace.download_artifacts(run.id, tmp_path / "dl", path="reports")
    assert sorted(f.read_text() for f in files) == ["alpha", "beta"]


_EXIT_SCRIPT = """
import sys, modelworks as mw
ws = mw.Workspace(sys.argv[1], user="alice")
run = ws.start_run(experiment="e")
for step in range(1234):
    run.log_metric("loss", step * 0.5, step=step)
print(run.id)
# no flush, no end: the interpreter exits with points still queued
"""


def test_queued_points_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, str(tmp_path / "ws")],
                         capture_output=True, text=True, check=True)
    run_id = out.stdout.strip()
    ws = mw.Workspace(tmp_path / "ws", user="alice")
    points = ws.metric_history(run_id, "loss")
    assert len(points) == 1234 and points[-1].value == 1233 * 0.5
    assert ws.get_run(run_id).metric_count == 1234
    ws.close()


def test_metric_values_round_trip_exactly(workspace: mw.Workspace) -> None:
    values = [0.1 + 0.2, 1 / 3, 1e-300, 1.7976931348623157e308, -2.5e-7]
    with workspace.start_run(experiment="e") as run:
        for i, v in enumerate(values):
            run.log_metric(f"m{i}", v)
    latest = workspace.get_run(run.id).metrics
    assert [latest[f"m{i}"] for i in range(len(values))] == values
    found = workspace.search_runs(experiment="e", filter="metrics.m0 = 0.30000000000000004")
    assert [r.id for r in found] == [run.id]


@pytest.mark.parametrize("descending", [True, False])
def test_sort_pages_put_runs_without_value_last(workspace: mw.Workspace,
                                                descending: bool) -> None:
    values: dict[str, float | None] = {}
    for i, v in enumerate([0.5, None, 0.9, float("nan"), 0.1, None, 0.7, 0.3]):
        with workspace.start_run(experiment="sort", name=f"r{i}") as run:
            run.log_metric("other", 1.0)
            if v is not None:
                run.log_metric("score", v)
        values[f"r{i}"] = v
    term = "metrics.score DESC" if descending else "metrics.score"
    full = [r.name for r in workspace.search_runs(experiment="sort", order_by=[term])]
    with_value = sorted((n for n, v in values.items() if v is not None and not math.isnan(v)),
                        key=lambda n: values[n], reverse=descending)  # type: ignore[arg-type,return-value]
    assert full[: len(with_value)] == with_value
    assert set(full[len(with_value):]) == {"r1", "r3", "r5"}  # missing and NaN sort last
    for size in (1, 3, 5):
        pages = []
        for offset in range(0, 8, size):
            pages += [r.name for r in workspace.search_runs(
                experiment="sort", order_by=[term, "attributes.name"], limit=size,
                offset=offset)]
        assert pages == [r.name for r in workspace.search_runs(
            experiment="sort", order_by=[term, "attributes.name"])]
    filtered = workspace.search_runs(experiment="sort", filter="metrics.score > 0.2",
                                     order_by=[term])
    assert [r.name for r in filtered] == [n for n in with_value if values[n] > 0.2]  # type: ignore[operator]
