"""The DAG of one pipeline run: nodes (a step call each), their arguments, the outputs.

Stored as JSON in ``mw_pipeline_runs.dag``. A DAG built from placeholders cannot have a
cycle, but one built or edited by hand can: :meth:`Dag.validate` refuses it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ..errors import InvalidInput

__all__ = ["Arg", "Dag", "NodeSpec"]


class Arg(BaseModel):
    """One argument of a step call: another node's output, a JSON value, or an object
    (a constant with no JSON form, stored in the artifact store as ``ref``)."""

    model_config = ConfigDict(frozen=True)

    node: str | None = None
    value: Any = None
    obj: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Arg:
        if self.node is not None and self.obj is not None:
            raise ValueError("an argument is a node output or an object, not both")
        return self


class NodeSpec(BaseModel):
    """One step call: ``step`` is the step's ``module:qualname``, ``name`` its name."""

    model_config = ConfigDict(frozen=True)

    id: str
    step: str
    name: str
    args: list[Arg] = []
    keywords: dict[str, Arg] = {}
    arg_names: list[str] = []  # the parameter each positional argument binds to

    def inputs(self) -> list[str]:
        """The nodes this one reads, in argument order (repeats removed)."""
        seen: list[str] = []
        for arg in [*self.args, *self.keywords.values()]:
            if arg.node is not None and arg.node not in seen:
                seen.append(arg.node)
        return seen

    def named_args(self) -> dict[str, Arg]:
        """Every argument by the parameter it binds to."""
        out = {(self.arg_names[i] if i < len(self.arg_names) else f"arg{i}"): a
               for i, a in enumerate(self.args)}
        out.update(self.keywords)
        return out


class Dag(BaseModel):
    """Nodes in the order they were recorded, and the pipeline's outputs by name."""

    nodes: list[NodeSpec]
    path: str | None = None  # the pipeline function's module:qualname
    outputs: dict[str, str] = {}
    output_kind: str = "single"  # none | single | tuple | dict

    def node(self, node_id: str) -> NodeSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise InvalidInput(f"the pipeline has no node {node_id!r}", field="node")

    def check(self) -> None:
        """Unique ids, known inputs and outputs, no cycle (InvalidInput otherwise)."""
        ids = [n.id for n in self.nodes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise InvalidInput(f"node ids must be unique: {', '.join(dupes)} repeat",
                               field="dag")
        known = set(ids)
        for n in self.nodes:
            for dep in n.inputs():
                if dep not in known:
                    raise InvalidInput(f"node {n.id!r} reads {dep!r}, which is not a node",
                                       field="dag")
        for name, dep in self.outputs.items():
            if dep not in known:
                raise InvalidInput(f"output {name!r} names {dep!r}, which is not a node",
                                   field="dag")
        self.levels()

    def levels(self) -> list[list[str]]:
        """Nodes grouped so each reads only earlier groups (Kahn); a cycle is refused."""
        deps = {n.id: set(n.inputs()) for n in self.nodes}
        done: set[str] = set()
        out: list[list[str]] = []
        while len(done) < len(deps):
            ready = [i for i, d in deps.items() if i not in done and d <= done]
            if not ready:
                stuck = [i for i in deps if i not in done]
                raise InvalidInput(f"the pipeline has a cycle through {_cycle(deps, stuck)}",
                                   field="dag")
            out.append(ready)
            done.update(ready)
        return out

    def consumers(self) -> dict[str, list[str]]:
        """For each node, the nodes that read it."""
        out: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for dep in n.inputs():
                out[dep].append(n.id)
        return out


def _cycle(deps: dict[str, set[str]], stuck: list[str]) -> str:
    """One cycle among the stuck nodes, as ``a -> b -> a``."""
    path: list[str] = []
    node = stuck[0]
    while node not in path:
        path.append(node)
        node = next(d for d in sorted(deps[node]) if d in stuck)
    loop = [*path[path.index(node):], node]
    return " -> ".join(loop)
