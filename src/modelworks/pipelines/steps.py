"""``@step`` and ``@pipeline``: plain functions that build a DAG when called inside a run.

A step called outside a pipeline run is its function, called eagerly. While
``ws.run_pipeline`` builds a pipeline, each step call records a node and returns a
:class:`StepOutput` placeholder; the pipeline function's return value (a placeholder, or a
tuple / dict of them) names the pipeline's outputs. Nothing runs while building.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, overload

from ..errors import InvalidInput
from .dag import Arg, Dag, NodeSpec
from .values import is_json

__all__ = ["Pipeline", "Step", "StepOutput", "pipeline", "step", "steps_registry"]

_BUILDING: ContextVar[_Builder | None] = ContextVar("modelworks_pipeline_build", default=None)
# Steps by "module:qualname", so a worker in this process finds a step it cannot import
# (one defined in __main__, a notebook or a function body).
_STEPS: dict[str, Step] = {}


def steps_registry() -> Mapping[str, Step]:
    """Every step defined in this process, by ``module:qualname``."""
    return _STEPS


def _path(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def _check_name(name: str | None, fn: Callable[..., Any], kind: str) -> str:
    value = fn.__name__ if name is None else name
    if not isinstance(value, str) or not value.strip() or len(value) > 180:
        raise InvalidInput(f"{kind} name must be a non-empty string of at most 180 "
                           f"characters, got {value!r}", field="name")
    return value.strip()


class Step:
    """A function whose calls become DAG nodes inside a pipeline run (see :func:`step`)."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, retries: int = 0,
                 backoff: float = 1.0, cache: bool = True, allow_pickle: bool = False) -> None:
        if not callable(fn) or inspect.isclass(fn):
            raise InvalidInput(f"@step decorates a function, got {fn!r}", field="fn")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"retries must be a non-negative integer, got {retries!r}",
                               field="retries")
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
            raise InvalidInput(f"backoff must be a non-negative number of seconds, got "
                               f"{backoff!r}", field="backoff")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = _check_name(name, fn, "step")
        self.retries = retries
        self.backoff = float(backoff)
        self.cache = bool(cache)
        self.allow_pickle = bool(allow_pickle)
        self.path = _path(fn)
        self.signature = inspect.signature(fn)
        _STEPS[self.path] = self

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.path})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = _BUILDING.get()
        if builder is None:  # outside a pipeline build: just the function
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # By reference: the function itself is hidden behind this object in its module.
        return (_resolve, (self.path,))


def _resolve(path: str) -> Step:
    from .execute import resolve_step

    return resolve_step(path)


class StepOutput:
    """The future output of a step inside a pipeline being built: pass it to other steps.

    Its value exists only when the pipeline runs, so using it as a Python value (``if df``,
    ``len(df)``, ``df.empty``, ``df["col"]``, arithmetic) raises a clear error.
    """

    __slots__ = ("_node", "_step")

    def __init__(self, node: str, step_name: str) -> None:
        self._node = node
        self._step = step_name

    @property
    def node(self) -> str:
        return self._node

    def __repr__(self) -> str:
        return f"<output of step {self._step} (node {self._node})>"

    def _refuse(self, what: str) -> InvalidInput:
        return InvalidInput(
            f"the output of step {self._step!r} (node {self._node!r}) was used as a Python "
            f"value ({what}) while the pipeline was being built; a step's output is only "
            "known when the pipeline runs: pass it to another step and do that work there",
            field="pipeline")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocols (copy, pickle, numpy) probe and move on
        raise self._refuse(f"attribute .{name}")

    def __bool__(self) -> bool:
        raise self._refuse("truth test")

    def __len__(self) -> int:
        raise self._refuse("len()")

    def __iter__(self) -> Any:
        raise self._refuse("iteration or unpacking; a step returns one value")

    def __getitem__(self, key: Any) -> Any:
        raise self._refuse(f"indexing [{key!r}]")

    def __contains__(self, item: Any) -> bool:
        raise self._refuse("'in' test")

    def __float__(self) -> float:
        raise self._refuse("float()")

    def __int__(self) -> int:
        raise self._refuse("int()")

    def __index__(self) -> int:
        raise self._refuse("an index")

    def __format__(self, spec: str) -> str:
        raise self._refuse("formatting into a string")


def _refuse_operator(symbol: str) -> Callable[..., Any]:
    def method(self: StepOutput, *_: Any) -> Any:
        raise self._refuse(f"operator {symbol}")
    return method


for _dunder, _symbol in {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
    "pow": "**", "matmul": "@", "and": "&", "or": "|", "xor": "^", "radd": "+", "rsub": "-",
    "rmul": "*", "rtruediv": "/", "rfloordiv": "//", "rmod": "%", "rpow": "**", "rand": "&",
    "ror": "|", "rxor": "^", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "neg": "-",
    "pos": "+", "abs": "abs()", "invert": "~",
}.items():
    setattr(StepOutput, f"__{_dunder}__", _refuse_operator(_symbol))


def _positional_names(signature: inspect.Signature, count: int) -> list[str]:
    """The parameter each of ``count`` positional arguments binds to (``*args`` items as
    ``args[0]``, ``args[1]``...)."""
    names: list[str] = []
    for p in signature.parameters.values():
        if len(names) == count:
            break
        if p.kind is p.VAR_POSITIONAL:
            names.extend(f"{p.name}[{j}]" for j in range(count - len(names)))
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return names


class _Builder:
    """Collects the nodes of one pipeline build."""

    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.nodes: dict[str, NodeSpec] = {}
        self.steps: dict[str, Step] = {}
        self.objects: dict[str, Any] = {}  # constants with no JSON form, stored as artifacts

    def _node_id(self, name: str) -> str:
        if name not in self.nodes:
            return name
        n = 2
        while f"{name}_{n}" in self.nodes:
            n += 1
        return f"{name}_{n}"

    def _arg(self, node: str, param: str, value: Any) -> Arg:
        if isinstance(value, StepOutput):
            if value.node not in self.nodes:
                raise InvalidInput(f"step {node!r}: argument {param!r} is the output of a "
                                   "step from another pipeline build", field=param)
            return Arg(node=value.node)
        if isinstance(value, Step | Pipeline):
            raise InvalidInput(f"step {node!r}: argument {param!r} is the step "
                               f"{value.name!r} itself; call it to use its output",
                               field=param)
        if is_json(value):
            return Arg(value=json.loads(json.dumps(value)))  # tuples become lists, as stored
        key = f"{node}.{param}"
        self.objects[key] = value
        return Arg(obj=key)

    def add(self, step_: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepOutput:
        node = self._node_id(step_.name)
        try:
            step_.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {step_.name!r} called with arguments that do not fit "
                               f"{step_.name}{step_.signature}: {exc}", field=step_.name
                               ) from exc
        names = _positional_names(step_.signature, len(args))
        arg_specs = [self._arg(node, names[i], v) for i, v in enumerate(args)]
        kwarg_specs = {k: self._arg(node, k, v) for k, v in kwargs.items()}
        self.nodes[node] = NodeSpec(id=node, step=step_.path, name=step_.name,
                                    args=arg_specs, keywords=kwarg_specs, arg_names=names)
        self.steps[node] = step_
        return StepOutput(node, step_.name)


class Pipeline:
    """A function of steps (see :func:`pipeline`); call it directly to run it eagerly."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 experiment: str | None = None) -> None:
        if not callable(fn) or inspect.isclass(fn):
            raise InvalidInput(f"@pipeline decorates a function, got {fn!r}", field="fn")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = _check_name(name, fn, "pipeline")
        self.experiment = experiment
        self.path = _path(fn)
        self.signature = inspect.signature(fn)

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({self.path})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` checked against the signature, with defaults filled in."""
        accepted = self.signature.parameters
        varkw = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        for key in params:
            if key not in accepted and not varkw:
                raise InvalidInput(
                    f"pipeline {self.name!r} has no parameter {key!r}; its parameters: "
                    f"{', '.join(accepted) or 'none'}", field=key)
            if key in accepted and accepted[key].kind is inspect.Parameter.POSITIONAL_ONLY:
                raise InvalidInput(f"pipeline parameter {key!r} is positional-only; "
                                   "parameters are passed by name", field=key)
        missing = [p.name for p in accepted.values()
                   if p.default is p.empty and p.name not in params
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if missing:
            raise InvalidInput(f"pipeline {self.name!r} needs parameter"
                               f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                               field=missing[0])
        bound = self.signature.bind_partial(**params)
        bound.apply_defaults()
        return dict(bound.arguments)

    def build(self, params: Mapping[str, Any]) -> tuple[Dag, dict[str, Step], dict[str, Any]]:
        """The DAG the function describes for ``params``, its steps by node, and the
        non-JSON constants by ``node.param`` (they travel through the artifact store)."""
        values = self.bind(params)
        builder = _Builder(self.name)
        token = _BUILDING.set(builder)
        try:
            returned = self.fn(**values)
        finally:
            _BUILDING.reset(token)
        outputs = _outputs(self.name, returned)
        dag = Dag(nodes=list(builder.nodes.values()), path=self.path, outputs=outputs[0],
                  output_kind=outputs[1])
        dag.check()
        return dag, builder.steps, builder.objects


def _outputs(name: str, returned: Any) -> tuple[dict[str, str], str]:
    """Output name -> node, and how they were returned: none, single, tuple or dict."""
    def node_of(key: str, value: Any) -> str:
        if not isinstance(value, StepOutput):
            raise InvalidInput(
                f"pipeline {name!r} returned {type(value).__name__} as output {key!r}; a "
                "pipeline returns step outputs (one, or a tuple or dict of them)",
                field="pipeline")
        return value.node

    if returned is None:
        return {}, "none"
    if isinstance(returned, StepOutput):
        return {"output": returned.node}, "single"
    if isinstance(returned, tuple | list):
        return {str(i): node_of(str(i), v) for i, v in enumerate(returned)}, "tuple"
    if isinstance(returned, dict):
        for key in returned:
            if not isinstance(key, str):
                raise InvalidInput(f"pipeline {name!r} returned a dict with key {key!r}; "
                                   "output names must be strings", field="pipeline")
        return {k: node_of(k, v) for k, v in returned.items()}, "dict"
    return {"output": node_of("output", returned)}, "single"


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(*, name: str | None = None, retries: int = 0, backoff: float = 1.0,
         cache: bool = True, allow_pickle: bool = False) -> Callable[[Callable[..., Any]], Step]:
    ...
def step(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         retries: int = 0, backoff: float = 1.0, cache: bool = True,
         allow_pickle: bool = False) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a pipeline step: ``@step`` or ``@step(retries=2, cache=False)``.

    Args:
        name: the node name in the DAG (default: the function's name).
        retries: extra attempts after a failure, ``backoff * 2**(n-1)`` seconds apart.
        cache: reuse the output of an earlier run with the same code, inputs and params.
        allow_pickle: store an output no safe format can hold with pickle (and load it).
    """
    def wrap(f: Callable[..., Any]) -> Step:
        return Step(f, name=name, retries=retries, backoff=backoff, cache=cache,
                    allow_pickle=allow_pickle)
    return wrap(fn) if fn is not None else wrap


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(*, name: str | None = None, experiment: str | None = None
             ) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
             experiment: str | None = None) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make ``fn`` a pipeline: its step calls form the DAG ``ws.run_pipeline`` runs.

    ``experiment`` is where its runs are tracked (default ``pipeline-<name>``).
    """
    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, experiment=experiment)
    return wrap(fn) if fn is not None else wrap
