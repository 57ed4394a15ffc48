"""Pipelines on the local executor: DAG building, runs and records, caching, retries,
resuming a failed run, lineage, and bad input. Real SQLite (and PostgreSQL) workspaces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelworks as mw
from modelworks.errors import InvalidInput, NotFound
from modelworks.pipelines.cache import source_hash
from modelworks.pipelines.dag import Arg, Dag, NodeSpec

from . import _steps

NODES = ["load", "features", "train", "stats", "matrix", "score"]


@pytest.fixture
def ws(tmp_path: Path) -> Any:
    with mw.Workspace(tmp_path / "ws", user="alice") as workspace:
        yield workspace


def _statuses(run: mw.PipelineRun) -> dict[str, str]:
    return {s.node: s.status for s in run.steps}


# -- building ---------------------------------------------------------------------------


def test_a_step_outside_a_pipeline_is_its_function() -> None:
    before = _steps.CALLS["square"]
    assert _steps.square(7) == 49
    assert _steps.CALLS["square"] == before + 1
    # A pipeline called directly runs eagerly, too: real values, nothing recorded.
    out = _steps.training(rows=40)
    assert isinstance(out["model"], LogisticRegression)
    assert out["stats"]["rows"] == 40


def test_building_records_nodes_arguments_and_outputs() -> None:
    dag, steps, objects = _steps.training.build({"rows": 30, "C": 0.5})
    assert [n.id for n in dag.nodes] == ["load", "features", "train", "stats", "matrix",
                                         "score"]
    assert dag.levels() == [["load"], ["features"], ["train", "stats", "matrix"], ["score"]]
    train = dag.node("train")
    assert train.step.endswith("_steps:train") and steps["train"] is _steps.train
    assert train.named_args() == {"df": Arg(node="features"), "C": Arg(value=0.5)}
    assert dag.node("load").named_args() == {"rows": Arg(value=30), "seed": Arg(value=0)}
    assert dag.outputs == {"model": "train", "stats": "stats", "score": "score"}
    assert dag.output_kind == "dict" and objects == {}
    # The same step called twice gets numbered nodes; *args items are named by position.
    fan, _, _ = _steps.fan_out.build({"n": 3})
    assert [n.id for n in fan.nodes] == ["square", "square_2", "square_3", "add_all"]
    assert list(fan.node("add_all").named_args()) == ["values[0]", "values[1]", "values[2]"]


def test_unknown_or_missing_parameters_are_refused_and_nothing_is_recorded(ws: Any) -> None:
    with pytest.raises(InvalidInput, match="has no parameter 'row'") as exc:
        ws.run_pipeline(_steps.training, row=10)
    assert exc.value.field == "row"
    with pytest.raises(InvalidInput, match="needs parameter marker") as missing:
        ws.run_pipeline(_steps.resumable)
    assert missing.value.field == "marker"
    with pytest.raises(InvalidInput, match="called with arguments that do not fit"):
        @mw.pipeline
        def wrong_call() -> Any:
            return _steps.square(1, 2)
        ws.run_pipeline(wrong_call)
    assert ws.pipeline_runs() == []


@pytest.mark.parametrize("misuse", [
    lambda df: bool(df), lambda df: len(df), lambda df: df.empty, lambda df: df["a"],
    lambda df: df + 1, lambda df: list(df), lambda df: df > 0, lambda df: f"{df:>4}"])
def test_a_steps_output_used_as_a_value_while_building_says_why(ws: Any, misuse: Any) -> None:
    @mw.pipeline
    def careless(rows: int = 10) -> Any:
        df = _steps.load(rows)
        misuse(df)
        return _steps.features(df)

    with pytest.raises(InvalidInput, match="only known when the pipeline runs") as exc:
        ws.run_pipeline(careless)
    assert "step 'load'" in str(exc.value)


def test_a_pipeline_must_return_step_outputs(ws: Any) -> None:
    @mw.pipeline
    def constant() -> Any:
        _steps.square(2)
        return 4

    with pytest.raises(InvalidInput, match="returned int as output 'output'"):
        ws.run_pipeline(constant)


def test_a_cycle_in_a_hand_built_dag_is_refused() -> None:
    nodes = [NodeSpec(id="a", step="m:a", name="a", args=[Arg(node="c")]),
             NodeSpec(id="b", step="m:b", name="b", args=[Arg(node="a")]),
             NodeSpec(id="c", step="m:c", name="c", keywords={"x": Arg(node="b")})]
    with pytest.raises(InvalidInput, match="cycle through a -> c -> b -> a") as exc:
        Dag(nodes=nodes, outputs={"output": "c"}).check()
    assert exc.value.field == "dag"
    with pytest.raises(InvalidInput, match="reads 'zz', which is not a node"):
        Dag(nodes=[NodeSpec(id="a", step="m:a", name="a", args=[Arg(node="zz")])]).check()


def test_step_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="retries must be a non-negative integer"):
        mw.step(retries=-1)(lambda: 1)
    with pytest.raises(InvalidInput, match="backoff"):
        mw.step(backoff="soon")(lambda: 1)  # type: ignore[arg-type]


# -- running ----------------------------------------------------------------------------


def test_a_run_records_step_runs_outputs_tracked_runs_and_audit(workspace: Any) -> None:
    ws = workspace
    run = ws.run_pipeline(_steps.training, rows=120, C=0.5)
    assert run.status == "FINISHED" and run.executor == "local"
    assert run.params == {"rows": 120, "C": 0.5, "seed": 0}
    assert [s.node for s in run.steps] == NODES
    assert all(s.status == "FINISHED" and s.attempts == 1 and not s.cached for s in run.steps)
    assert run.cached_steps == []

    out = run.output()
    assert isinstance(out["model"], LogisticRegression) and out["model"].C == 0.5
    assert out["stats"] == {"rows": 120, "positive": out["stats"]["positive"],
                            "regions": ["north", "south"]}
    assert 0 < run.outputs["score"] < 1
    assert run.output_refs["stats"].format == "json"
    assert run.output_refs["model"].format == "model:sklearn"
    assert run.step("matrix").output_format == "npy"
    assert run.step("features").output_format == "parquet"

    # Each step is a tracked child of the pipeline's run, with its params and metrics.
    parent = ws.get_run(run.run_id)
    assert parent.experiment == "pipeline-training" and parent.status == "FINISHED"
    assert parent.params == {"rows": "120", "C": "0.5", "seed": "0"}
    children = ws.search_runs("pipeline-training", parent=run.run_id)
    assert sorted(c.name for c in children) == sorted(NODES)
    train = ws.get_run(run.step("train").run_id)
    assert train.parent_id == run.run_id and train.status == "FINISHED"
    assert train.params == {"C": "0.5"} and train.metrics == {"train_rows": 120.0}
    assert train.tags["mw.pipeline_run"] == run.id
    assert train.tags["mw.input.df"] == run.step("features").output_sha256

    # Read back as stored, and listed.
    again = ws.get_pipeline_run(run.id)
    assert again.model_dump() == run.model_dump()
    assert again.output("stats") == out["stats"]
    assert [r.id for r in ws.pipeline_runs("training")] == [run.id]
    assert ws.pipeline_runs("other") == [] and ws.pipeline_runs(status="FAILED") == []
    with pytest.raises(NotFound):
        ws.get_pipeline_run("nope")

    events = ws.audit_log(entity_type="pipeline_run", entity_id=run.id)
    assert [e.action for e in events] == ["pipeline.finished", "pipeline.started"]
    assert events[0].payload["status"] == "FINISHED"
    assert events[0].payload["steps"] == {n: "FINISHED" for n in NODES}
    assert events[1].payload["nodes"] == NODES
    assert ws.verify_audit().ok


def test_lineage_links_each_output_to_its_run_and_each_run_to_its_inputs(ws: Any) -> None:
    run = ws.run_pipeline(_steps.training, rows=60)
    model_sha = run.output_refs["model"].sha256
    graph = ws.lineage("artifact", model_sha)
    edges = {(e.child.type, e.relation, e.parent.type, e.parent.id) for e in graph.edges}
    train_run, features_run, load_run = (run.step(n).run_id for n in
                                         ("train", "features", "load"))
    assert ("artifact", "produced_by", "run", train_run) in edges
    assert ("run", "used:df", "artifact", run.step("features").output_sha256) in edges
    assert ("artifact", "produced_by", "run", features_run) in edges
    assert ("artifact", "produced_by", "run", load_run) in edges
    assert ("run", "step_of", "pipeline_run", run.id) in edges
    # Downstream from load's output: every step that read it, directly or not.
    down = ws.lineage("artifact", run.step("load").output_sha256, direction="down")
    reached = {n.id for n in down.nodes if n.type == "run"}
    assert reached == {run.step(n).run_id for n in NODES if n != "load"}


def test_a_rerun_takes_unchanged_steps_from_the_cache(ws: Any) -> None:
    first = ws.run_pipeline(_steps.training, rows=80)
    calls = dict(_steps.CALLS)
    again = ws.run_pipeline(_steps.training, rows=80)
    assert dict(_steps.CALLS) == calls  # nothing ran
    assert again.status == "FINISHED" and again.cached_steps == NODES
    assert all(s.status == "CACHED" for s in again.steps)
    # A cached step points at the run that made its output.
    assert again.step("train").run_id == first.step("train").run_id
    assert again.output("stats") == first.output("stats")
    assert again.output_refs == first.output_refs
    events = ws.audit_log(entity_type="pipeline_run", entity_id=again.id,
                          action="pipeline.finished")
    assert events[0].payload["cached"] == sorted(NODES)

    # A new parameter reruns the step that takes it and what reads that step only.
    changed = ws.run_pipeline(_steps.training, rows=80, C=0.1)
    assert _statuses(changed) == {"load": "CACHED", "features": "CACHED", "train": "FINISHED",
                                  "stats": "CACHED", "matrix": "CACHED", "score": "FINISHED"}
    # cache=False runs everything.
    fresh = ws.run_pipeline(_steps.training, rows=80, cache=False)
    assert fresh.cached_steps == []
    assert fresh.output_refs["stats"] == first.output_refs["stats"]  # same bytes, same hash
    assert fresh.output_refs["model"] == first.output_refs["model"]  # models too


def test_an_unchanged_retrained_model_keeps_the_steps_after_it_cached(ws: Any) -> None:
    first = ws.run_pipeline(_steps.retraining)
    again = ws.run_pipeline(_steps.retraining)
    # the model is fitted again, to the same bytes, so scoring it is not repeated
    assert _statuses(again) == {"load": "CACHED", "features": "CACHED",
                                "retrain": "FINISHED", "matrix": "CACHED", "score": "CACHED"}
    assert again.step("retrain").output_sha256 == first.step("retrain").output_sha256
    assert again.output() == first.output()


def test_a_step_with_cache_false_always_runs(ws: Any) -> None:
    @mw.pipeline
    def twice(v: int = 1) -> Any:
        return _steps.uncached(_steps.square(v))

    ws.run_pipeline(twice)
    before = _steps.CALLS["uncached"]
    run = ws.run_pipeline(twice)
    assert _statuses(run) == {"square": "CACHED", "uncached": "FINISHED"}
    assert _steps.CALLS["uncached"] == before + 1 and run.output() == 2


def _module(path: Path, name: str, body: str) -> ModuleType:
    path.write_text(body)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


STEP_V1 = '''
import modelworks as mw

@mw.step
def double(x: int) -> int:
    return x * 2

@mw.pipeline(name="doubling")
def doubling(x: int = 2):
    return double(x)
'''


def test_the_cache_follows_the_steps_code_not_its_comments(ws: Any, tmp_path: Path) -> None:
    v1 = _module(tmp_path / "v1.py", "mw_test_steps_v1", STEP_V1)
    commented = STEP_V1.replace("    return x * 2", '    """Twice."""\n    # why: a test\n'
                                "    return x   *   2")
    v2 = _module(tmp_path / "v2.py", "mw_test_steps_v2", commented)
    changed = STEP_V1.replace("x * 2", "x * 3")
    v3 = _module(tmp_path / "v3.py", "mw_test_steps_v3", changed)
    assert source_hash(v1.double.fn) == source_hash(v2.double.fn)
    assert source_hash(v1.double.fn) != source_hash(v3.double.fn)

    assert ws.run_pipeline(v1.doubling).output() == 4
    same = ws.run_pipeline(v2.doubling)
    assert same.cached_steps == ["double"] and same.output() == 4
    edited = ws.run_pipeline(v3.doubling)
    assert edited.cached_steps == [] and edited.output() == 6


def test_retries_run_again_and_record_the_attempts(ws: Any, tmp_path: Path) -> None:
    @mw.pipeline
    def once(marker: str) -> Any:
        return _steps.flaky(marker)

    run = ws.run_pipeline(once, marker=str(tmp_path / "marker"))
    step = run.step("flaky")
    assert run.status == "FINISHED" and step.status == "FINISHED" and step.attempts == 2
    assert step.error == "attempt 1: ConnectionError: the first attempt fails"
    assert run.output() == "failed once"


def test_a_failed_run_fails_its_readers_and_a_rerun_resumes(ws: Any, tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    with pytest.raises(mw.PipelineFailed, match="failed at step 'explode' after 1 attempt: "
                                                "RuntimeError: broken step") as exc:
        ws.run_pipeline(_steps.resumable, marker=str(marker))
    failed = exc.value.run
    assert exc.value.step == "explode" and isinstance(exc.value.__cause__, RuntimeError)
    assert failed.status == "FAILED" and "broken step" in (failed.error or "")
    # The independent branch still ran; the failed step's reader did not.
    assert _statuses(failed) == {"load": "FINISHED", "features": "FINISHED",
                                 "explode": "FAILED", "size_of": "SKIPPED",
                                 "stats": "FINISHED"}
    assert "RuntimeError: broken step" in (failed.step("explode").error or "")
    assert failed.step("size_of").error == "not run: step 'explode' failed"
    assert ws.get_run(failed.step("explode").run_id).status == "FAILED"
    assert ws.get_run(failed.run_id).status == "FAILED"
    with pytest.raises(NotFound, match="was not produced"):
        failed.output("head")
    assert ws.pipeline_runs(status="failed")[0].id == failed.id

    marker.unlink()  # the fix
    resumed = ws.run_pipeline(_steps.resumable, marker=str(marker))
    assert _statuses(resumed) == {"load": "CACHED", "features": "CACHED",
                                  "explode": "FINISHED", "size_of": "FINISHED",
                                  "stats": "CACHED"}
    assert resumed.output("head") == 3


def test_an_output_with_no_safe_format_names_the_step_and_type(ws: Any) -> None:
    @mw.pipeline
    def lazy(n: int = 3) -> Any:
        return _steps.generator(n)

    with pytest.raises(mw.PipelineFailed) as exc:
        ws.run_pipeline(lazy)
    message = str(exc.value)
    assert "step 'generator' returned generator, which has no safe format" in message
    assert "allow_pickle=True" in message
    assert exc.value.run.step("generator").attempts == 1  # not retried: it cannot help


def test_pickle_only_where_the_step_opted_in(ws: Any) -> None:
    @mw.pipeline
    def with_a_set(n: int = 4) -> Any:
        values = _steps.pickled_set(n)
        return {"set": values, "size": _steps.size_of(values)}

    run = ws.run_pipeline(with_a_set)
    assert run.output("size") == 4 and run.step("pickled_set").output_format == "pickle"
    with pytest.raises(InvalidInput, match="allow_pickle=True") as exc:
        run.output("set")
    assert exc.value.field == "allow_pickle"
    assert run.output("set", allow_pickle=True) == {0, 1, 2, 3}


def test_a_dataframe_parameter_travels_through_the_artifact_store(ws: Any) -> None:
    @mw.pipeline
    def from_frame(df: pd.DataFrame, scale: float = 2.0) -> Any:
        return _steps.stats(_steps.features(df, scale=scale))

    frame = pd.DataFrame({"a": [1.0, -2.0, 3.0], "b": [0.5, 0.5, 0.5],
                          "region": ["north", "north", "south"]})
    run = ws.run_pipeline(from_frame, df=frame)
    assert run.output() == {"rows": 3, "positive": 2, "regions": ["north", "south"]}
    assert run.params["df"]["type"] == "pandas.DataFrame"
    assert len(run.params["df"]["sha256"]) == 64
    again = ws.run_pipeline(from_frame, df=frame.copy())  # same content: same hash, cached
    assert again.cached_steps == ["features", "stats"]
    with pytest.raises(InvalidInput, match="argument 'df' of step 'features' is set") as exc:
        ws.run_pipeline(from_frame, df={1, 2})
    assert exc.value.field == "df"


def test_executor_names_are_checked_before_anything_runs(ws: Any) -> None:
    with pytest.raises(InvalidInput, match="unknown executor 'threads'"):
        ws.run_pipeline(_steps.training, executor="threads")
    assert ws.pipeline_runs() == []


def test_pipeline_by_import_path_and_params_named_like_options(ws: Any) -> None:
    @mw.pipeline
    def options(cache: int = 1) -> Any:
        return _steps.square(cache)

    assert ws.run_pipeline(options, params={"cache": 5}).output() == 25
    run = ws.run_pipeline(f"{_steps.__name__}:fan_out", n=3)
    assert run.output() == 0 + 1 + 4 and run.pipeline == "fan_out"
    with pytest.raises(InvalidInput, match="is a step, not a pipeline"):
        ws.run_pipeline(f"{_steps.__name__}:square")


def test_values_with_numpy_and_series_round_trip(ws: Any) -> None:
    @mw.step
    def series(n: int) -> pd.Series:
        return pd.Series(np.arange(n, dtype=float), name="k")

    @mw.step
    def scalar(s: pd.Series) -> Any:
        return np.float64(s.sum())

    @mw.pipeline
    def numeric(n: int = 4) -> Any:
        s = series(n)
        return s, scalar(s)

    run = ws.run_pipeline(numeric)
    s, total = run.output()
    assert isinstance(s, pd.Series) and s.name == "k" and s.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert total == 6.0 and run.output_refs["1"].format == "json"
    assert run.output_kind == "tuple" and list(run.outputs) == ["0", "1"]


def test_a_driver_failure_closes_every_record_it_opened(ws: Any) -> None:
    def stop_at_train(step: mw.pipelines.StepRun) -> None:
        if step.node == "train" and step.status == "RUNNING":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ws.run_pipeline(_steps.training, rows=30, on_step=stop_at_train)
    [run] = ws.pipeline_runs()
    assert run.status == "FAILED" and "pipeline interrupted: KeyboardInterrupt" in (run.error or "")
    statuses = _statuses(run)
    assert statuses["load"] == statuses["features"] == "FINISHED"
    assert statuses["train"] == "FAILED"
    assert {statuses[n] for n in ("stats", "matrix", "score")} == {"SKIPPED"}
    assert ws.get_run(run.step("train").run_id).status == "FAILED"
    assert ws.get_run(run.run_id).status == "FAILED"
    assert ws.search_runs(filter="attributes.status = 'RUNNING'") == []
    finished = ws.audit_log(entity_type="pipeline_run", action="pipeline.finished")
    assert finished[0].payload["status"] == "FAILED"
    assert finished[0].payload["steps"] == statuses
