"""``modelworks train-many``: one trainer over the groups of a data file, a model per group."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from ..errors import InvalidInput, NotFound
from . import global_options
from ._output import JsonOption, cell, console, print_json, table

__all__ = ["register"]

_SHOWN = 50  # rows printed per table; --json has them all


def _trainer(target: str) -> Any:
    """``module:function`` imported as ``python -m`` would (the current folder first)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InvalidInput(f"--trainer {target!r} must be MODULE:FUNCTION", field="trainer")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"--trainer {target!r} cannot be imported: {exc}",
                           field="trainer") from None
    return obj


def _read(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise NotFound(f"no data file at {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise InvalidInput(f"data file {str(path)!r} must end in .csv or .parquet", field="data")


def train_many_cmd(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(metavar="DATA", help="A CSV or Parquet file.")],
    group_by: Annotated[str, typer.Option("--group-by", help="The column to group by.")],
    trainer: Annotated[str, typer.Option(
        "--trainer", metavar="MODULE:FUNCTION",
        help="fit(group_value, group_df) -> fitted model (the current folder is importable).")],
    name_prefix: Annotated[str, typer.Option(
        "--name-prefix", help="Models are named <prefix>-<group>.")],
    executor: Annotated[str, typer.Option(
        "--executor", "-e", help="local, processes or ray.")] = "local",
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Groups trained at once (processes, ray; default: the CPUs).")
    ] = None,
    register_: Annotated[bool, typer.Option(
        "--register/--no-register", help="--no-register fits every group, stores nothing.")
    ] = True,
    json_: JsonOption = False,
) -> None:
    """Train and register one model per group of DATA; failures are reported per group."""
    frame = _read(data)
    fit = _trainer(trainer)
    with global_options(ctx).open_workspace() as ws:
        summary = ws.train_many(frame, group_by=group_by, trainer=fit,
                                name_prefix=name_prefix, executor=executor, workers=workers,
                                register=register_)
    rows: list[dict[str, Any]] = [
        {k: (None if v is None or v != v else v) for k, v in row.items()}  # NaN -> None
            for row in summary.astype(object).to_dict(orient="records")]
    failed = sum(row["status"] == "failed" for row in rows)
    if json_:
        print_json({"groups": len(rows), "failed": failed,
                    "summary": [{**row, "group": None if row["group"] is None
                                 else str(row["group"])} for row in rows]})
    else:
        out = console()
        shown = [r for r in rows if r["status"] == "failed"][:_SHOWN] or rows[:_SHOWN]
        t = table("group", "model", "version", "status", "error", "seconds",
                  options={"error": {"overflow": "fold"}})
        for row in shown:
            style = "red" if row["status"] == "failed" else "green"
            t.add_row(cell(row["group"]), cell(row["model"]), cell(row["version"]),
                      Text(row["status"], style=style), cell(row["error"]),
                      cell(round(row["seconds"], 3)))
        out.print(t)
        out.print(f"{len(rows) - failed} of {len(rows)} groups "
                  f"{'registered' if register_ else 'trained'}, {failed} failed"
                  + (f" (the first {_SHOWN} shown)" if len(shown) < failed else ""))
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train-many")(train_many_cmd)
