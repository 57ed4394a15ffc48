"""``modelworks serve`` (the prediction server) and ``modelworks predict`` (batch scoring)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, print_json, table

__all__ = ["register"]


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    models: Annotated[str, typer.Option(
        "--models", help="Comma-separated versions to load before ready, e.g. "
                         "claims-triage@production,fraud/4 (the first is /invocations' model "
                         "when it is the only one).")] = "",
    no_log: Annotated[bool, typer.Option("--no-prediction-log",
                                         help="Do not journal predictions.")] = False,
    log_level: Annotated[str, typer.Option("--log-level")] = "warning",
) -> None:
    """Serve predictions over HTTP: native, MLflow /invocations and Open Inference v2."""
    from ..serving.server import serve as run

    if not 1 <= port <= 65535:
        raise InvalidInput("--port must be between 1 and 65535", field="port")
    if workers < 1:
        raise InvalidInput("--workers must be at least 1", field="workers")
    pinned = [m.strip() for m in models.split(",") if m.strip()]
    opts = global_options(ctx)
    run(workspace=opts.workspace, artifacts=opts.artifacts, user=opts.user, models=pinned,
        host=host, port=port, workers=workers, log_predictions=not no_log, log_level=log_level,
        announce=lambda text: console().print(Text(text)))


def predict(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    input_: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet rows to score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write: .csv or "
                                                                 ".parquet.")],
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Rows per chunk.")] = 50_000,
    probabilities: Annotated[bool, typer.Option(
        "--probabilities", help="Add one proba_<class> column per class.")] = False,
) -> None:
    """Score a file in chunks with a registered version; writes the input plus predictions."""
    from ..serving.batch import score_file

    if chunk_rows < 1:
        raise InvalidInput("--chunk-rows must be at least 1", field="chunk_rows")
    with global_options(ctx).open_workspace() as ws, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console(), transient=True) as progress:
        task = progress.add_task(f"scoring {input_.name}", total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        summary = score_file(ws, model_uri, input_, output, chunk_rows=chunk_rows,
                             probabilities=probabilities, progress=advance)
    console().print(Text(f"scored {summary.rows:,} rows with {summary.model_uri} in "
                         f"{summary.seconds:.1f} s -> {output}"))


def explain(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="REQUEST_ID (every row) or "
                                                   "REQUEST_ID:ROW.")],
    top: Annotated[int, typer.Option("--top", help="Features shown per row.")] = 10,
    json_: JsonOption = False,
) -> None:
    """Explain a served prediction from its logged input and model version (audited)."""
    with global_options(ctx).open_workspace() as ws:
        explanation = ws.explain_prediction(request_id, top=top)
    if json_:
        print_json(explanation)
        return
    out = console()
    out.print(Text(f"{explanation.model}/{explanation.version}, {explanation.method} against "
                   f"{explanation.background}"))
    for row in explanation.rows:
        score = f", score {row.score:.4g}" if row.score is not None else ""
        t = table("feature", "value", "contribution",
                  title=f"{row.prediction_id}: prediction {row.prediction}{score}",
                  options={"contribution": {"justify": "right"}})
        for c in row.contributions:
            t.add_row(cell(c.feature), cell(c.value), cell(f"{c.contribution:+.4g}"))
        out.print(t)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("predict")(predict)
    app.command("explain")(explain)
