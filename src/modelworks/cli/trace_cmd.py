"""``modelworks trace MODEL_URI`` (or ``prediction:ID``): where a version or a served
prediction came from."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from . import global_options
from ._output import JsonOption, print_json

if TYPE_CHECKING:
    from ..registry.records import ModelTrace

__all__ = ["register"]


def trace(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(
        help="models:/NAME/VERSION, NAME@ALIAS, ... or prediction:REQUEST_ID:ROW")],
    fmt: Annotated[
        Literal["tree", "dot"],
        typer.Option("--format", help="tree (readable) or dot (Graphviz)."),
    ] = "tree",
    json_: JsonOption = False,
) -> None:
    """The version's run, datasets, code, environment, alias moves and audit events.

    ``prediction:ID`` starts one step earlier, at a logged prediction and its version.
    """
    found: ModelTrace
    with global_options(ctx).open_workspace() as ws:
        if model_uri.startswith("prediction:"):
            found = ws.trace_prediction(model_uri.removeprefix("prediction:"))
        else:
            found = ws.trace(model_uri)
    if json_:
        print_json(found)
    elif fmt == "dot":
        from ..lineage import render_dot

        sys.stdout.write(render_dot(found.graph) + "\n")
    else:
        sys.stdout.write(found.render_tree() + "\n")


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)
