"""What runs on an executor: one step, from artifact refs in to an artifact ref out.

:func:`execute_step` is a top-level function taking a small picklable :class:`StepTask`, so
a process pool or Ray can run it. It reads its inputs from the artifact store, calls the
step, writes the output in a safe format and returns where it is. It never touches the
metadata database: the driver records everything.

A step is found by its ``module:qualname``: first among the steps this process defined, then
by importing its module. Steps the workers cannot import by name (defined in ``__main__``,
a notebook or a function body) travel by value (cloudpickle) instead.
"""

from __future__ import annotations

import importlib
import pickle
import time
import traceback
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, ModelworksError
from ..store.artifacts import ArtifactStore
from .values import decode, encode

if TYPE_CHECKING:
    from .steps import Step

__all__ = ["InputRef", "OutputNotStorable", "StepOutcome", "StepTask", "describe_error",
           "error_text", "execute_step", "log_metric", "resolve_step"]


class OutputNotStorable(InvalidInput):
    """A step returned a value no safe format holds (retrying cannot help)."""


@dataclass(frozen=True)
class InputRef:
    """An argument: a JSON ``value``, or stored bytes (``sha256`` in ``format``)."""

    value: Any = None
    sha256: str | None = None
    format: str | None = None
    allow_pickle: bool = False


@dataclass(frozen=True)
class StepTask:
    """Everything a worker needs to run one step; small and picklable."""

    node: str
    step: str  # module:qualname
    step_name: str
    artifacts: str  # the artifact store's URL
    args: list[InputRef]
    kwargs: dict[str, InputRef]
    allow_pickle: bool = False
    code: bytes | None = None  # the step function by value, when workers cannot import it
    storage_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepOutcome:
    sha256: str
    size: int
    format: str
    type: str
    seconds: float
    metrics: list[tuple[str, float, int]]


_METRICS: ContextVar[list[tuple[str, float, int]] | None] = ContextVar(
    "modelworks_step_metrics", default=None)
_STORES: dict[tuple[str, str], ArtifactStore] = {}


def log_metric(key: str, value: float, step: int = 0) -> None:
    """Inside a step run by a pipeline: a metric of the step's tracked run (the driver
    writes it when the step finishes). Outside a pipeline run it does nothing."""
    sink = _METRICS.get()
    if sink is not None:
        sink.append((str(key), float(value), int(step)))


def resolve_step(path: str) -> Step:
    """The step ``module:qualname`` names: defined in this process, else imported."""
    from .steps import Step, steps_registry

    found = steps_registry().get(path)
    if found is not None:
        return found
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ModelworksError(
            f"cannot import step {path!r} on this worker ({type(exc).__name__}: {exc}); "
            "steps must be importable where they run: define them at the top level of a "
            "module the workers can import (an installed package, or a folder on their "
            "PYTHONPATH)") from exc
    if not isinstance(target, Step):
        raise ModelworksError(f"{path!r} is not a step (decorate it with @mw.step)")
    return target


def _store(task: StepTask) -> ArtifactStore:
    key = (task.artifacts, repr(sorted(task.storage_options.items())))
    store = _STORES.get(key)
    if store is None:
        store = ArtifactStore(task.artifacts, storage_options=task.storage_options)
        _STORES[key] = store
    return store


def _load(store: ArtifactStore, ref: InputRef) -> Any:
    if ref.sha256 is None:
        return ref.value
    assert ref.format is not None
    return decode(store.get_bytes(ref.sha256), ref.format, allow_pickle=ref.allow_pickle)


def execute_step(task: StepTask, step: Step | None = None) -> StepOutcome:
    """Run one step (``step`` given in-process; otherwise found from ``task``)."""
    if step is not None:
        fn = step.fn
    elif task.code is not None:
        fn = pickle.loads(task.code)
    else:
        fn = resolve_step(task.step).fn
    store = _store(task)
    args = [_load(store, ref) for ref in task.args]
    kwargs = {k: _load(store, ref) for k, ref in task.kwargs.items()}
    metrics: list[tuple[str, float, int]] = []
    token = _METRICS.set(metrics)
    start = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
    finally:
        _METRICS.reset(token)
    seconds = time.perf_counter() - start
    try:
        encoded = encode(value, step=task.step_name, allow_pickle=task.allow_pickle)
    except InvalidInput as exc:
        raise OutputNotStorable(str(exc), field="output") from None
    ref = store.put_bytes(encoded.data)
    return StepOutcome(sha256=ref.sha256, size=ref.size, format=encoded.format,
                       type=encoded.type, seconds=seconds, metrics=metrics)


def error_text(exc: BaseException, *, limit: int = 8_000) -> str:
    """The error as recorded: the traceback's last ``limit`` characters."""
    return "".join(traceback.format_exception(exc))[-limit:]


def describe_error(exc: BaseException) -> str:
    """One line: ``Type: message``."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__

