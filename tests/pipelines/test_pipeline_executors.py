"""One pipeline, three executors: the same outputs and the same lineage on local, a spawned
process pool and a real local Ray instance; and a wide pipeline on processes loses no run.

Every executor gets its own workspace, so no run is served from another's cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelworks as mw

from . import _steps


def _lineage(ws: mw.Workspace, run: mw.PipelineRun) -> set[tuple[str, ...]]:
    """The run's lineage with run ids replaced by node names (they differ per run)."""
    node_of = {s.run_id: s.node for s in run.steps}
    shape: set[tuple[str, ...]] = set()
    for step in run.steps:
        graph = ws.lineage("run", step.run_id)
        for edge in graph.edges:
            if edge.child.type != "run" or edge.child.id != step.run_id:
                continue
            if edge.relation.startswith("used:"):
                shape.add((step.node, edge.relation, str(edge.payload["node"])))
            elif edge.relation == "step_of":
                assert edge.parent.id == run.id
                shape.add((step.node, "step_of"))
        produced = ws.lineage("artifact", step.output_sha256).edges
        makers = {node_of.get(e.parent.id) for e in produced if e.relation == "produced_by"
                  and e.child.id == step.output_sha256}
        shape.add((step.node, "produced_by", *sorted(str(m) for m in makers)))
    return shape


class _Runs:
    """The pipeline run on each executor, made on first use (once per module)."""

    def __init__(self, factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
        self.factory, self.request = factory, request
        self.done: dict[str, tuple[Any, ...]] = {}

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        if name not in self.done:
            if name == "ray":
                self.request.getfixturevalue("ray_instance")
            ws = mw.Workspace(Path(self.factory.mktemp(name)) / "ws", user="alice")
            run = ws.run_pipeline(_steps.training, rows=150, C=0.3, executor=name, workers=2)
            self.done[name] = (ws, run, _lineage(ws, run))
        return self.done[name]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[_Runs]:
    runs = _Runs(tmp_path_factory, request)
    yield runs
    for ws, _, _ in runs.done.values():
        ws.close()


@pytest.mark.parametrize("name", ["processes", "ray"])
def test_the_same_outputs_on_every_executor(results: _Runs, name: str) -> None:
    _, local, _ = results["local"]
    _, other, _ = results[name]
    assert other.status == "FINISHED" and other.executor == name
    assert [(s.node, s.status, s.attempts) for s in other.steps] == \
        [(s.node, s.status, s.attempts) for s in local.steps]
    # Frames, arrays, JSON and models are stored byte for byte alike, whichever process
    # made them (model bytes are reproducible: ids numbered, no timestamps).
    for node in ("load", "features", "stats", "matrix", "score", "train"):
        assert other.step(node).output_sha256 == local.step(node).output_sha256, node
    mine, theirs = local.output(), other.output()
    assert theirs["stats"] == mine["stats"] and theirs["score"] == mine["score"]
    assert np.allclose(theirs["model"].coef_, mine["model"].coef_)


@pytest.mark.parametrize("name", ["processes", "ray"])
def test_the_same_lineage_on_every_executor(results: _Runs, name: str) -> None:
    _, _, local_lineage = results["local"]
    ws, other, lineage = results[name]
    assert lineage == local_lineage
    assert ("score", "used:model", "train") in lineage
    assert ("train", "produced_by", "train") in lineage
    train = ws.get_run(other.step("train").run_id)
    assert train.parent_id == other.run_id and train.metrics == {"train_rows": 150.0}


def test_a_wide_pipeline_on_processes_records_every_step(tmp_path: Path) -> None:
    # A step defined in a function body cannot be imported by a worker: it travels by value.
    @mw.step
    def halve(total: int) -> float:
        return total / 2

    @mw.pipeline
    def wide(n: int = 8) -> Any:
        return halve(_steps.fan_out(n))

    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        run = ws.run_pipeline(wide, n=8, executor="processes", workers=2)
        assert run.status == "FINISHED" and run.output() == sum(i * i for i in range(8)) / 2
        squares = [s for s in run.steps if s.step.endswith(":square")]
        assert len(squares) == 8 and all(s.status == "FINISHED" for s in squares)
        children = ws.search_runs("pipeline-wide", parent=run.run_id)
        assert len(children) == 10 and all(c.status == "FINISHED" for c in children)
        assert len({s.run_id for s in run.steps}) == 10
        # Every output has its lineage edge to the run that made it.
        for step in run.steps:
            produced = ws.lineage("artifact", step.output_sha256).edges
            assert any(e.parent.id == step.run_id for e in produced), step.node
