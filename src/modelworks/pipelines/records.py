"""Pipeline runs and their step runs as records, read back from the metadata database.

A :class:`PipelineRun`'s outputs are loaded from the artifact store only when asked for
(``run.output()``, ``run.outputs["name"]``), so listing runs never reads a model or a frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, computed_field
from sqlalchemy import Connection, select

from ..errors import InvalidInput, ModelworksError, NotFound
from ..store.artifacts import ArtifactStore
from ..store.tables import pipeline_runs, step_runs
from .dag import Dag
from .values import decode

__all__ = ["OutputRef", "PipelineFailed", "PipelineRun", "StepRun", "get_pipeline_run",
           "list_pipeline_runs"]

# Step run states; SKIPPED: not run because a step it reads failed.
PENDING, RUNNING, FINISHED, FAILED, CACHED, SKIPPED = (
    "PENDING", "RUNNING", "FINISHED", "FAILED", "CACHED", "SKIPPED")


class OutputRef(BaseModel):
    """Where a pipeline output is: the node that made it and its stored bytes."""

    model_config = ConfigDict(frozen=True)

    node: str
    sha256: str | None = None
    format: str | None = None
    type: str | None = None


class StepRun(BaseModel):
    """One node of one pipeline run. ``run_id`` is the tracked run that made the output:
    this pipeline run's child run, or for a CACHED step the run that made it first."""

    model_config = ConfigDict(frozen=True)

    id: int
    node: str
    step: str
    status: str
    cached: bool
    attempts: int
    run_id: str | None
    cache_key: str | None
    output_sha256: str | None
    output_format: str | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 6)


class PipelineRun(BaseModel):
    """One run of a pipeline: parameters, executor, DAG, step runs and outputs."""

    model_config = ConfigDict(frozen=True)

    id: str
    pipeline: str
    status: str
    executor: str
    params: dict[str, Any]
    run_id: str | None
    dag: Dag
    output_kind: str
    output_refs: dict[str, OutputRef]
    steps: list[StepRun]
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    created_by: str
    _artifacts: ArtifactStore | None = PrivateAttr(default=None)
    _loaded: dict[tuple[str, bool], Any] = PrivateAttr(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cached_steps(self) -> list[str]:
        """The nodes whose output came from the cache."""
        return [s.node for s in self.steps if s.cached]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 6)

    def step(self, node: str) -> StepRun:
        for s in self.steps:
            if s.node == node:
                return s
        raise NotFound(f"pipeline run {self.id} has no step {node!r} (it has: "
                       f"{', '.join(s.node for s in self.steps) or 'none'})")

    def output(self, name: str | None = None, *, allow_pickle: bool = False) -> Any:
        """One output by name; without a name, what the pipeline returned (one value, a
        tuple or a dict). Loaded from the artifact store on first use."""
        if name is not None:
            return self._value(name, allow_pickle)
        if self.output_kind == "none":
            return None
        if self.output_kind == "single":
            return self._value("output", allow_pickle)
        if self.output_kind == "tuple":
            return tuple(self._value(k, allow_pickle) for k in self.output_refs)
        return {k: self._value(k, allow_pickle) for k in self.output_refs}

    @property
    def outputs(self) -> Mapping[str, Any]:
        """Outputs by name (``"output"`` for a single one), each loaded when read."""
        return _LazyOutputs(self)

    def _value(self, name: str, allow_pickle: bool) -> Any:
        ref = self.output_refs.get(name)
        if ref is None:
            raise NotFound(f"pipeline run {self.id} has no output {name!r} (it has: "
                           f"{', '.join(self.output_refs) or 'none'})")
        if ref.sha256 is None or ref.format is None:
            raise NotFound(f"output {name!r} of pipeline run {self.id} was not produced: "
                           f"the run is {self.status}")
        key = (name, allow_pickle)
        if key not in self._loaded:
            if self._artifacts is None:
                raise ModelworksError("this record is detached from its workspace: read it "
                                      "with ws.get_pipeline_run(id) to load outputs")
            self._loaded[key] = decode(self._artifacts.get_bytes(ref.sha256), ref.format,
                                       allow_pickle=allow_pickle)
        return self._loaded[key]


class _LazyOutputs(Mapping[str, Any]):
    def __init__(self, run: PipelineRun) -> None:
        self._run = run

    def __getitem__(self, name: str) -> Any:
        if name not in self._run.output_refs:
            raise KeyError(name)
        return self._run._value(name, False)

    def __iter__(self) -> Iterator[str]:
        return iter(self._run.output_refs)

    def __len__(self) -> int:
        return len(self._run.output_refs)

    def __repr__(self) -> str:
        return f"<outputs {', '.join(self._run.output_refs)} (loaded when read)>"


class PipelineFailed(ModelworksError):
    """A pipeline run ended FAILED; ``run`` is its record, ``step`` the first failed node."""

    def __init__(self, message: str, *, run: PipelineRun, step: str | None) -> None:
        super().__init__(message)
        self.run = run
        self.step = step


def _step_record(row: Any) -> StepRun:
    return StepRun(id=row.id, node=row.node, step=row.step, status=row.status,
                   cached=bool(row.cached), attempts=row.attempts, run_id=row.run_id,
                   cache_key=row.cache_key, output_sha256=row.output_sha256,
                   output_format=row.output_format, error=row.error,
                   started_at=row.started_at, finished_at=row.finished_at)


def _records(conn: Connection, rows: list[Any], artifacts: ArtifactStore | None
             ) -> list[PipelineRun]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    by_run: dict[str, list[StepRun]] = {i: [] for i in ids}
    for s in conn.execute(select(step_runs).where(step_runs.c.pipeline_run_id.in_(ids))
                          .order_by(step_runs.c.id)).all():
        by_run[s.pipeline_run_id].append(_step_record(s))
    out = []
    for r in rows:
        outputs = r.outputs or {}
        rec = PipelineRun(
            id=r.id, pipeline=r.pipeline, status=r.status, executor=r.executor,
            params=r.params or {}, run_id=r.run_id, dag=Dag.model_validate(r.dag),
            output_kind=outputs.get("kind", "none"),
            output_refs={k: OutputRef.model_validate(v)
                         for k, v in (outputs.get("items") or {}).items()},
            steps=by_run[r.id], error=r.error, started_at=r.started_at,
            finished_at=r.finished_at, created_by=r.created_by)
        rec._artifacts = artifacts
        out.append(rec)
    return out


def get_pipeline_run(conn: Connection, artifacts: ArtifactStore | None, run_id: str
                     ) -> PipelineRun:
    if not isinstance(run_id, str) or not run_id.strip():
        raise InvalidInput("a pipeline run id is a non-empty string", field="run_id")
    row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_id.strip())
                       ).first()
    if row is None:
        raise NotFound(f"no pipeline run with id {run_id!r}")
    return _records(conn, [row], artifacts)[0]


def list_pipeline_runs(conn: Connection, artifacts: ArtifactStore | None, *,
                       pipeline: str | None = None, status: str | None = None,
                       limit: int = 20) -> list[PipelineRun]:
    """Newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput("limit must be a positive integer", field="limit")
    query = select(pipeline_runs)
    if pipeline is not None:
        query = query.where(pipeline_runs.c.pipeline == pipeline)
    if status is not None:
        query = query.where(pipeline_runs.c.status == status.upper())
    rows = conn.execute(query.order_by(pipeline_runs.c.started_at.desc(),
                                       pipeline_runs.c.id.desc()).limit(limit)).all()
    return _records(conn, list(rows), artifacts)
