"""Run a pipeline: build its DAG, run each step when its inputs exist, record everything.

The driver (this module, in the caller's process) does every database write; the executor
only runs :func:`~.execute.execute_step`, which moves values through the artifact store.
A step starts as soon as the steps it reads have finished, so independent steps run side
by side on executors with more than one worker. A failed step fails what reads it (SKIPPED)
but not independent branches, so a re-run finds as many good outputs in the cache as
possible and resumes from there.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from ..context import Context
from ..errors import InvalidInput
from ..tracking import runs as _runs
from . import cache as _cache
from . import journal
from .dag import Arg, Dag
from .execute import (
    InputRef,
    OutputNotStorable,
    StepOutcome,
    StepTask,
    describe_error,
    error_text,
    execute_step,
)
from .records import (
    CACHED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    SKIPPED,
    PipelineFailed,
    PipelineRun,
    StepRun,
    get_pipeline_run,
)
from .steps import Pipeline, Step
from .values import encode, is_json, type_name

if TYPE_CHECKING:
    from ..config import Settings
    from .executors import Executor

__all__ = ["as_pipeline", "run_pipeline"]

OnStep = Callable[[StepRun], None]


def as_pipeline(target: Pipeline | Callable[..., Any] | str) -> Pipeline:
    """A Pipeline from one, from a plain function, or from ``"module:function"``."""
    if isinstance(target, Pipeline):
        return target
    if isinstance(target, str):
        from ..monitoring.training_specs import load_entrypoint

        try:
            loaded = load_entrypoint(target)
        except InvalidInput as exc:
            raise InvalidInput(str(exc).replace("entrypoint", "pipeline"),
                               field="pipeline") from exc
        if isinstance(loaded, Step):
            raise InvalidInput(f"{target!r} is a step, not a pipeline", field="pipeline")
        return as_pipeline(loaded)
    if isinstance(target, Step):
        raise InvalidInput(f"{target.name!r} is a step: run a @pipeline function that "
                           "calls it", field="pipeline")
    if callable(target):
        return Pipeline(target)
    raise InvalidInput(f"not a pipeline: {target!r}", field="pipeline")


_INSTALLED = ("site-packages", "dist-packages")


def _by_value(step: Step, executor: str) -> bytes | None:
    """The step function pickled by value when workers may not import it by name.

    A process pool is spawned with this process's ``sys.path``, so any module found here is
    found there. Ray workers (on other machines, too) see installed packages but not the
    driver's own folders, so for Ray a step from a module outside ``site-packages`` travels
    by value with that module's functions (cloudpickle), as Ray does for ``__main__``.
    """
    module = step.fn.__module__
    importable = module != "__main__" and "<locals>" not in step.fn.__qualname__
    if importable:
        try:
            importable = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            importable = False
    source = getattr(sys.modules.get(module), "__file__", None) or ""
    if importable and (executor == "processes" or any(d in source for d in _INSTALLED)):
        return None
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - a scikit-learn dependency (joblib)
        raise InvalidInput(f"step {step.name!r} is defined in {module} and cannot be "
                           "imported by workers: move it to an installed package, or "
                           "install cloudpickle", field=step.name) from exc
    target = sys.modules.get(module) if importable else None
    if target is None:
        return bytes(cloudpickle.dumps(step.fn))
    cloudpickle.register_pickle_by_value(target)
    try:
        return bytes(cloudpickle.dumps(step.fn))
    finally:
        cloudpickle.unregister_pickle_by_value(target)


class _Driver:
    def __init__(self, ctx: Context, pipe: Pipeline, dag: Dag, steps: dict[str, Step],
                 objects: dict[str, InputRef], executor: Executor, *, use_cache: bool,
                 pipeline_run_id: str, run_id: str, row_ids: dict[str, int],
                 experiment: str, on_step: OnStep | None) -> None:
        self.ctx, self.pipe, self.dag, self.steps = ctx, pipe, dag, steps
        self.objects, self.ex, self.use_cache = objects, executor, use_cache
        self.prid, self.run_id, self.row_ids, self.on_step = (pipeline_run_id, run_id,
                                                              row_ids, on_step)
        self.experiment = experiment
        self.nodes = {n.id: n for n in dag.nodes}
        self.records = {n.id: StepRun(id=row_ids[n.id], node=n.id, step=n.step,
                                      status=PENDING, cached=False, attempts=0, run_id=None,
                                      cache_key=None, output_sha256=None, output_format=None,
                                      error=None, started_at=None, finished_at=None)
                        for n in dag.nodes}
        self.outputs: dict[str, tuple[str, str, str]] = {}  # node -> sha256, format, type
        self.errors: dict[str, list[str]] = {}
        self.first_failure: tuple[str, BaseException] | None = None
        self.tasks: dict[str, StepTask] = {}
        self.codes: dict[str, bytes | None] = {}

    # -- bookkeeping --------------------------------------------------------------------

    def _set(self, node: str, **changes: Any) -> None:
        from ..store.tables import utcnow

        if changes.get("status") in (RUNNING, CACHED) and "started_at" not in changes:
            changes["started_at"] = utcnow()
        if changes.get("status") in (FINISHED, FAILED, CACHED, SKIPPED):
            changes.setdefault("finished_at", utcnow())
        self.records[node] = self.records[node].model_copy(update=changes)
        if self.on_step is not None:
            self.on_step(self.records[node])

    def _ref(self, arg: Arg) -> InputRef:
        if arg.node is not None:
            sha, fmt, _ = self.outputs[arg.node]
            return InputRef(sha256=sha, format=fmt,
                            allow_pickle=self.steps[arg.node].allow_pickle)
        if arg.obj is not None:
            return self.objects[arg.obj]
        return InputRef(value=arg.value)

    # -- one step -----------------------------------------------------------------------

    def _start(self, node: str) -> Future[StepOutcome] | None:
        """Take the output from the cache (None), or start the step on the executor."""
        spec, step = self.nodes[node], self.steps[node]
        named = {name: self._ref(arg) for name, arg in spec.named_args().items()}
        key = _cache.cache_key(
            code=_cache.source_hash(step.fn),
            inputs={k: r.sha256 for k, r in named.items() if r.sha256 is not None},
            params={k: r.value for k, r in named.items() if r.sha256 is None})
        if self.use_cache and step.cache:
            with self.ctx.db.read() as conn:
                hit = _cache.lookup(conn, self.ctx.artifacts, key)
            if hit is not None:
                source = journal.step_cached(self.ctx, step_run_id=self.row_ids[node], key=key,
                                             hit=hit)
                self.outputs[node] = (hit.sha256, hit.format, hit.type)
                self._set(node, status=CACHED, cached=True, cache_key=key, run_id=source,
                          output_sha256=hit.sha256, output_format=hit.format)
                return None
        params = {k: r.value if isinstance(r.value, str) else json.dumps(r.value)
                  for k, r in named.items() if r.sha256 is None}
        tags = {"mw.pipeline": self.pipe.name, "mw.pipeline_run": self.prid,
                "mw.node": node, "mw.step": step.path}
        for k, r in named.items():
            if r.sha256 is not None:
                tags[f"mw.input.{k}"] = r.sha256
        run_id = _runs.create_run(self.ctx, experiment=self.experiment, name=node,
                                  params_=params, tags_=tags, parent_id=self.run_id)
        used = [(k, r.sha256, spec.named_args()[k].node, r.format or "")
                for k, r in named.items() if r.sha256 is not None]
        journal.step_started(self.ctx, step_run_id=self.row_ids[node], run_id=run_id,
                             pipeline_run_id=self.prid, key=key if step.cache else None,
                             used=used)
        self._set(node, status=RUNNING, run_id=run_id, attempts=1,
                  cache_key=key if step.cache else None)
        self.tasks[node] = StepTask(
            node=node, step=step.path, step_name=step.name, artifacts=self.ctx.artifacts.url,
            args=[self._ref(a) for a in spec.args],
            kwargs={k: self._ref(a) for k, a in spec.keywords.items()},
            allow_pickle=step.allow_pickle,
            code=None if self.ex.name == "local" else self._code(step),
            storage_options=dict(self.ctx.artifacts.storage_options))
        return self._submit(node)

    def _code(self, step: Step) -> bytes | None:
        if step.path not in self.codes:
            self.codes[step.path] = _by_value(step, self.ex.name)
        return self.codes[step.path]

    def _submit(self, node: str) -> Future[StepOutcome]:
        if self.ex.name == "local":  # in-process: no import, no pickling
            return self.ex.submit(execute_step, self.tasks[node], self.steps[node])
        return self.ex.submit(execute_step, self.tasks[node])

    def _finished(self, node: str, outcome: StepOutcome) -> None:
        rec, step = self.records[node], self.steps[node]
        errors = "\n".join(self.errors.get(node, [])) or None
        assert rec.run_id is not None
        journal.step_finished(
            self.ctx, step_run_id=rec.id, run_id=rec.run_id, node=node, step=step.path,
            pipeline_run_id=self.prid, attempts=rec.attempts, errors=errors,
            sha256=outcome.sha256, fmt=outcome.format, type_=outcome.type,
            metrics=outcome.metrics, cache_key=rec.cache_key)
        self.outputs[node] = (outcome.sha256, outcome.format, outcome.type)
        self._set(node, status=FINISHED, output_sha256=outcome.sha256,
                  output_format=outcome.format, error=errors)

    def _failed(self, node: str, exc: BaseException) -> None:
        rec = self.records[node]
        history = self.errors.get(node, [])
        text = "\n".join([*history[:-1], error_text(exc)])
        journal.step_failed(self.ctx, step_run_id=rec.id, run_id=rec.run_id,
                            attempts=rec.attempts, error=text)
        self._set(node, status=FAILED, error=history[-1] if history else describe_error(exc))
        if self.first_failure is None:
            self.first_failure = (node, exc)
        skipped: list[str] = []
        todo = list(self.dag.consumers()[node])
        while todo:
            nxt = todo.pop()
            if nxt not in skipped and self.records[nxt].status == PENDING:
                skipped.append(nxt)
                todo.extend(self.dag.consumers()[nxt])
        reason = f"not run: step {node!r} failed"
        journal.steps_skipped(self.ctx, [self.row_ids[n] for n in skipped], reason)
        for n in skipped:
            self._set(n, status=SKIPPED, error=reason)

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        waiting = {n.id: set(n.inputs()) for n in self.dag.nodes}
        consumers = self.dag.consumers()
        ready = deque(n for level in self.dag.levels() for n in level if not waiting[n])
        running: dict[Future[StepOutcome], str] = {}
        retry_at: dict[str, float] = {}

        def done(node: str) -> None:
            for c in consumers[node]:
                waiting[c].discard(node)
                if not waiting[c] and self.records[c].status == PENDING:
                    ready.append(c)

        while ready or running or retry_at:
            while ready:
                node = ready.popleft()
                fut = self._start(node)
                if fut is None:
                    done(node)
                else:
                    running[fut] = node
            now = time.monotonic()
            for node, at in list(retry_at.items()):
                if at <= now:
                    del retry_at[node]
                    running[self._submit(node)] = node
            if not running:
                if retry_at:
                    time.sleep(max(0.0, min(retry_at.values()) - time.monotonic()))
                continue
            timeout = (max(0.0, min(retry_at.values()) - time.monotonic())
                       if retry_at else None)
            finished, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            for fut in finished:
                node = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    self._finished(node, fut.result())
                    done(node)
                    continue
                step, rec = self.steps[node], self.records[node]
                self.errors.setdefault(node, []).append(
                    f"attempt {rec.attempts}: {describe_error(exc)}")
                if rec.attempts <= step.retries and not isinstance(exc, OutputNotStorable):
                    journal.step_retrying(self.ctx, step_run_id=rec.id,
                                          attempts=rec.attempts + 1,
                                          errors="\n".join(self.errors[node]))
                    self._set(node, attempts=rec.attempts + 1)
                    retry_at[node] = time.monotonic() + step.backoff * 2 ** (rec.attempts - 1)
                else:
                    self._failed(node, exc)

    def abort(self, exc: BaseException) -> None:
        """The driver itself failed (or was interrupted): close what is still open."""
        from ..store.tables import utcnow

        reason = f"pipeline interrupted: {describe_error(exc)}"
        pending = [n for n, r in self.records.items() if r.status == PENDING]
        for node, rec in self.records.items():
            if rec.status == RUNNING:
                journal.step_failed(self.ctx, step_run_id=rec.id, run_id=rec.run_id,
                                    attempts=rec.attempts, error=reason)
                self.records[node] = rec.model_copy(update={"status": FAILED, "error": reason,
                                                            "finished_at": utcnow()})
        journal.steps_skipped(self.ctx, [self.row_ids[n] for n in pending], reason)
        for node in pending:
            self.records[node] = self.records[node].model_copy(
                update={"status": SKIPPED, "error": reason})


def _objects(ctx: Context, steps: dict[str, Step], raw: dict[str, Any]
             ) -> dict[str, InputRef]:
    """Non-JSON constants into the artifact store (each object once), before anything runs."""
    out: dict[str, InputRef] = {}
    memo: dict[tuple[int, bool], InputRef] = {}
    for key, value in raw.items():
        node, _, param = key.rpartition(".")
        step = steps[node]
        slot = (id(value), step.allow_pickle)
        if slot not in memo:
            try:
                enc = encode(value, step=step.name, allow_pickle=step.allow_pickle,
                             subject=f"argument {param!r} of step {node!r} is")
            except InvalidInput as exc:
                raise InvalidInput(str(exc), field=param) from None
            ref = ctx.artifacts.put_bytes(enc.data)
            memo[slot] = InputRef(sha256=ref.sha256, format=enc.format,
                                  allow_pickle=enc.format == "pickle")
        out[key] = memo[slot]
    return out


def _params_record(bound: Mapping[str, Any], raw: dict[str, Any],
                   objects: dict[str, InputRef]) -> dict[str, Any]:
    """Pipeline parameters as stored: JSON values as they are, objects by content hash."""
    by_id = {id(v): objects[k] for k, v in raw.items()}
    out: dict[str, Any] = {}
    for name, value in bound.items():
        if is_json(value):
            out[name] = value
            continue
        ref = by_id.get(id(value))
        out[name] = {"type": type_name(value), "sha256": ref.sha256 if ref else None,
                     "format": ref.format if ref else None}
    return out


def run_pipeline(ctx: Context, pipeline: Pipeline | Callable[..., Any] | str, *,
                 params: Mapping[str, Any], executor: str | Executor = "local",
                 cache: bool = True, experiment: str | None = None, workers: int | None = None,
                 settings: Settings | None = None, on_step: OnStep | None = None
                 ) -> PipelineRun:
    """Run ``pipeline`` with ``params``; see ``Workspace.run_pipeline``.

    Raises:
        InvalidInput: an unknown or missing parameter, a bad DAG, an argument with no safe
            format; nothing is recorded then.
        PipelineFailed: a step failed (after its retries); ``exc.run`` is the record.
    """
    from .executors import get_executor

    pipe = as_pipeline(pipeline)
    if not isinstance(params, Mapping):
        raise InvalidInput("params must be a mapping of parameter names to values",
                           field="params")
    bound = pipe.bind(params)
    dag, steps, raw = pipe.build(params)
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise InvalidInput("experiment must be a non-empty string", field="experiment")
    exp = experiment or pipe.experiment or f"pipeline-{pipe.name}"
    objects = _objects(ctx, steps, raw)
    ex = get_executor(executor, workers=workers, settings=settings)
    try:
        stored = _params_record(bound, raw, objects)
        prid = uuid.uuid4().hex
        run_params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in stored.items()}
        run_id = _runs.create_run(ctx, experiment=exp, name=pipe.name, params_=run_params,
                                  tags_={"mw.pipeline": pipe.name, "mw.pipeline_run": prid,
                                         "mw.executor": ex.name}, parent_id=None)
        row_ids = journal.start_pipeline(ctx, pipeline_run_id=prid, pipeline=pipe.name,
                                         run_id=run_id, executor=ex.name, params=stored,
                                         dag=dag)
        driver = _Driver(ctx, pipe, dag, steps, objects, ex, use_cache=cache,
                         pipeline_run_id=prid, run_id=run_id, row_ids=row_ids,
                         experiment=exp, on_step=on_step)
        try:
            driver.run()
        except BaseException as exc:
            ex.shutdown(wait=False)  # do not wait for steps whose results nobody will read
            driver.abort(exc)
            _finish(ctx, driver, error=f"pipeline interrupted: {describe_error(exc)}\n"
                                      f"{error_text(exc)}")
            raise
        _finish(ctx, driver, error=None)
    finally:
        ex.shutdown()  # a no-op for an executor instance the caller passed: it owns it
    with ctx.db.read() as conn:
        record = get_pipeline_run(conn, ctx.artifacts, prid)
    if driver.first_failure is not None:
        node, cause = driver.first_failure
        failed = [s.node for s in record.steps if s.status == FAILED]
        rec = record.step(node)
        raise PipelineFailed(
            f"pipeline {pipe.name!r} (run {prid}) failed at step {node!r} after "
            f"{rec.attempts} attempt{'s' if rec.attempts != 1 else ''}: "
            f"{describe_error(cause)}"
            + (f"; also failed: {', '.join(n for n in failed if n != node)}"
               if len(failed) > 1 else ""), run=record, step=node) from cause
    return record


def _finish(ctx: Context, driver: _Driver, *, error: str | None) -> None:
    statuses = {n: r.status for n, r in driver.records.items()}
    ok = error is None and all(s in (FINISHED, CACHED) for s in statuses.values())
    outputs: dict[str, dict[str, Any]] = {}
    for name, node in driver.dag.outputs.items():
        sha, fmt, typ = driver.outputs.get(node, (None, None, None))
        outputs[name] = {"node": node, "sha256": sha, "format": fmt, "type": typ}
    if error is None and not ok and driver.first_failure is not None:
        node, exc = driver.first_failure
        error = f"step {node!r} failed: {describe_error(exc)}"
    journal.finish_pipeline(ctx, pipeline_run_id=driver.prid, pipeline=driver.pipe.name,
                            run_id=driver.run_id, status=FINISHED if ok else FAILED,
                            output_kind=driver.dag.output_kind, outputs=outputs,
                            steps=statuses, error=error)
