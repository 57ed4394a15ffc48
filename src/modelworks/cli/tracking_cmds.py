"""``modelworks experiments list``, ``runs list`` and ``runs show``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Group
from rich.text import Text

from ..records import RunRecord
from . import global_options
from ._output import (
    JsonOption,
    cell,
    console,
    fmt_bytes,
    fmt_duration,
    fmt_number,
    fmt_time,
    kv_grid,
    print_json,
    status_text,
    table,
)

__all__ = ["register"]

_LIST_METRICS = 4  # metric columns in `runs list`

experiments_app = typer.Typer(help="List experiments.", no_args_is_help=True)
runs_app = typer.Typer(help="Search and inspect runs.", no_args_is_help=True)


@experiments_app.command("list")
def list_experiments(ctx: typer.Context, json_: JsonOption = False) -> None:
    """All experiments, with their run counts."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.list_experiments()
    if json_:
        print_json(found)
        return
    t = table("id", "name", "runs", "created", "created by", title="experiments",
              options={"runs": {"justify": "right"}})
    for exp in found:
        t.add_row(cell(exp.id), cell(exp.name), cell(exp.run_count), cell(exp.created_at),
                  cell(exp.created_by))
    console().print(t)


def _metric_columns(found: Sequence[RunRecord], order_by: Sequence[str],
                    chosen: Sequence[str]) -> list[str]:
    """The chosen metrics; else those sorted on, then the keys most runs have (a few)."""
    if chosen:
        return list(dict.fromkeys(chosen))
    keys: list[str] = []
    for term in order_by:
        head = term.strip().split()[0] if term.strip() else ""
        entity, _, key = head.partition(".")
        key = key.strip("`\"'")
        if entity in ("metrics", "metric") and key and key not in keys:
            keys.append(key)
    counts = Counter(key for run in found for key in run.metrics)
    for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if key not in keys:
            keys.append(key)
    return [k for k in keys if k in counts][:_LIST_METRICS]


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Only runs of this experiment.")
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", "-f",
                     help="e.g. \"metrics.auc > 0.8 and params.model = 'rf'\"."),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o",
                     help="Sort key, e.g. 'metrics.auc DESC' (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many runs.")] = 100,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m",
                     help="Metric to show as a column (repeatable; default: a few).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Runs matching a filter, newest first unless --order-by says otherwise."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.search_runs(experiment, filter=filter_, order_by=order_by or None,
                               limit=limit)
    if json_:
        print_json(found)
        return
    metric_keys = _metric_columns(found, order_by or [], metric or [])
    t = table("id", "name", "experiment", "status", "start", "duration", *metric_keys,
              title=f"runs ({len(found)})",
              options={"id": {"no_wrap": True, "min_width": 32},
                       "duration": {"justify": "right"},
                       **{key: {"justify": "right"} for key in metric_keys}})
    for run in found:
        t.add_row(cell(run.id), cell(run.name), cell(run.experiment), status_text(run.status),
                  cell(run.start_time), cell(fmt_duration(run.duration_seconds)),
                  *(cell(fmt_number(run.metrics.get(key), digits=4)) for key in metric_keys))
    console().print(t)


def _environment(run: RunRecord) -> list[tuple[str, object]]:
    commit = run.git_commit or "(not a git checkout)"
    if run.git_commit and run.git_dirty:
        commit += f" (dirty, diff {(run.git_diff_hash or '')[:12]})"
    return [("git commit", commit), ("python", run.python_version),
            ("packages hash", run.packages_hash), ("host", run.host)]


def _run_view(run: RunRecord) -> Group:
    parts: list[object] = [kv_grid([
        ("run", run.id),
        ("name", run.name),
        ("experiment", run.experiment),
        ("status", status_text(run.status)),
        ("actor", run.actor),
        ("started", fmt_time(run.start_time)),
        ("ended", fmt_time(run.end_time)),
        ("duration", fmt_duration(run.duration_seconds)),
        ("metric points", run.metric_count),
        *([("parent", run.parent_id)] if run.parent_id else []),
        *_environment(run),
    ])]
    if run.status == "FAILED" and run.error:
        parts.append(Text("error", style="bold red"))
        parts.append(Text(run.error.rstrip()))
    for title, values in (("params", run.params), ("tags", run.tags)):
        if values:
            t = table("key", "value", title=title, options={"value": {"overflow": "fold"}})
            for key in sorted(values):
                t.add_row(cell(key), cell(values[key]))
            parts.append(t)
    if run.metrics:
        t = table("key", "latest", title="metrics",
                  options={"latest": {"justify": "right"}})
        for key in sorted(run.metrics):
            t.add_row(cell(key), cell(run.metrics[key]))
        parts.append(t)
    if run.artifacts:
        t = table("path", "size", "sha256", title="artifacts",
                  options={"size": {"justify": "right"}})
        for art in run.artifacts:
            t.add_row(cell(art.path), cell(fmt_bytes(art.size)), cell(art.sha256[:12]))
        parts.append(t)
    if run.datasets:
        t = table("dataset", "version", "role", "content hash", title="datasets used")
        for used in run.datasets:
            t.add_row(cell(used.dataset), cell(used.version), cell(used.role),
                      cell(used.content_hash[:12]))
        parts.append(t)
    return Group(*parts)  # type: ignore[arg-type]


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run's full id (from `runs list`).")
    ],
    json_: JsonOption = False,
) -> None:
    """Everything recorded about one run."""
    with global_options(ctx).open_workspace() as ws:
        run = ws.get_run(run_id)
    if json_:
        print_json(run)
        return
    console().print(_run_view(run))


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(runs_app, name="runs")
