"""``modelworks monitor run|runs``: drift of a version's served predictions or given data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, fmt_time, print_json, table

__all__ = ["register"]

monitor_app = typer.Typer(help="Monitor model versions for drift.", no_args_is_help=True)


def _uri(ref: str) -> str:
    from ..registry.uri import parse_model_uri

    return str(parse_model_uri(ref.strip()))


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    window: Annotated[str | None, typer.Option("--window", help="The last span of the "
                                               "prediction log, e.g. 1d, 12h.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601 (UTC).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="A CSV or Parquet file to "
                                              "compare instead of the log.")] = None,
    reference: Annotated[str, typer.Option("--reference", help="training, validation or "
                                           "dataset:NAME[:VERSION]")] = "training",
    json_: JsonOption = False,
) -> None:
    """Compare a window of served predictions (or a file) with the version's reference."""
    import pandas as pd

    frame = None
    if data is not None:
        if not data.is_file():
            raise InvalidInput(f"--data {str(data)!r} is not a file", field="data")
        frame = pd.read_csv(data) if data.suffix.lower() == ".csv" else pd.read_parquet(data)
    if frame is None and window is None and since is None:
        window = "1d"
    with global_options(ctx).open_workspace() as ws:
        result = ws.monitor(_uri(model_uri), reference=reference).run(
            data=frame, window=window, since=since, until=until)
    if json_:
        print_json(result)
        return
    drift = result.drift
    verdict = "DRIFT" if drift.dataset_drift else "no dataset drift"
    t = table("column", "method", "value", "threshold", "drifted",
              title=f"{result.model}/{result.version}: {result.rows:,} rows vs "
                    f"{result.reference} reference — {verdict} "
                    f"({drift.drifted_columns}/{drift.scored_columns} columns)")
    for c in drift.columns:
        t.add_row(cell(c.column), cell(c.method or c.status), cell(c.value),
                  cell(c.threshold), Text("yes", style="bold red") if c.drifted else cell("no"))
    console().print(t)


@monitor_app.command("runs")
def runs(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    json_: JsonOption = False,
) -> None:
    """Stored monitor runs of a version, newest first."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.monitor_runs(_uri(model_uri), limit=limit)
    if json_:
        print_json(found)
        return
    t = table("run", "when", "source", "rows", "drift share", "drifted columns",
              title=f"monitor runs ({len(found)})")
    for r in found:
        t.add_row(cell(r.id[:12]), cell(fmt_time(r.created_at)), cell(r.source),
                  cell(r.rows), cell(round(r.drift.share, 3)),
                  cell(", ".join(r.drifted_columns) or "—"))
    console().print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
