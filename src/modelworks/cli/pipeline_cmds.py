"""``modelworks pipeline run | runs | show``: run a pipeline, read its runs."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import (
    JsonOption,
    cell,
    console,
    fmt_duration,
    fmt_time,
    kv_grid,
    print_json,
    status_text,
    table,
)

if TYPE_CHECKING:
    from ..pipelines import PipelineRun, StepRun

__all__ = ["parse_params", "pipeline_app", "register"]

pipeline_app = typer.Typer(help="Run pipelines and read their runs (see docs/pipelines.md).",
                           no_args_is_help=True)

_STEP_MARKS = {"FINISHED": ("✓", "green"), "CACHED": ("↺", "cyan"), "FAILED": ("✗", "red"),
               "SKIPPED": ("-", "dim"), "RUNNING": ("…", "yellow")}
_DONE = ("FINISHED", "CACHED", "FAILED", "SKIPPED")


def parse_params(items: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; each value as JSON when it parses (``3``, ``true``, ``[1,2]``), else
    the text itself (``claims.parquet``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"--param takes NAME=VALUE, got {item!r}", field="param")
        if key in out:
            raise InvalidInput(f"--param {key} is given twice", field="param")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _step_line(step: StepRun) -> Text:
    mark, style = _STEP_MARKS.get(step.status, ("?", ""))
    line = Text(f"{mark} ", style=style)
    line.append(f"{step.node:<24} ")
    line.append(f"{step.status.lower():<9}", style=style)
    if step.seconds is not None and step.status == "FINISHED":
        line.append(f" {fmt_duration(step.seconds)}")
    if step.attempts > 1:
        line.append(f" ({step.attempts} attempts)")
    if step.status in ("FAILED", "SKIPPED") and step.error:
        line.append(f"  {step.error.strip().splitlines()[-1][:200]}", style="dim")
    return line


def _show(run: PipelineRun) -> None:
    out = console()
    out.print(kv_grid([
        ("pipeline run", run.id), ("pipeline", run.pipeline), ("status", status_text(run.status)),
        ("executor", run.executor), ("params", json.dumps(run.params, default=str)),
        ("tracked run", run.run_id), ("started", fmt_time(run.started_at)),
        ("duration", fmt_duration(run.seconds)),
        ("cached", ", ".join(run.cached_steps) or "none"),
        ("outputs", ", ".join(f"{k}={(r.sha256 or '-')[:12]} ({r.format or '-'})"
                              for k, r in run.output_refs.items()) or "none"),
        ("error", run.error.strip().splitlines()[-1] if run.error else None)]))
    t = table("node", "status", "attempts", "seconds", "output", "format", "run",
              options={"output": {"no_wrap": True}, "run": {"no_wrap": True}})
    for s in run.steps:
        t.add_row(cell(s.node), status_text(s.status), cell(s.attempts),
                  cell(fmt_duration(s.seconds)), cell((s.output_sha256 or "")[:12]),
                  cell(s.output_format), cell(s.run_id))
    out.print(t)


@pipeline_app.command("run")
def run_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(
        metavar="MODULE:PIPELINE", help="The @pipeline function, e.g. my_project.flows:training "
                                        "(the current folder is importable).")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="NAME=VALUE",
        help="A pipeline parameter (repeatable); the value is read as JSON when it parses, "
             "else as text.")] = None,
    executor: Annotated[str, typer.Option(
        "--executor", "-e", help="local, processes or ray.")] = "local",
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Steps at once (processes, ray; default: the CPUs).")] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Run every step, even when a cached output exists.")] = False,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", help="Where the runs are tracked (default: pipeline-<name>).")] = None,
    json_: JsonOption = False,
) -> None:
    """Run a pipeline: its steps as tracked runs, cached outputs reused."""
    from ..pipelines import PipelineFailed
    from ..pipelines.runner import as_pipeline

    params = parse_params(param or [])
    if os.getcwd() not in sys.path:  # as `python -m` does: the user's modules are here
        sys.path.insert(0, os.getcwd())
    pipe = as_pipeline(target.strip())
    log = Console(stderr=True, highlight=False)
    show_progress = not json_
    with global_options(ctx).open_workspace() as ws, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=log, transient=True,
            disable=not show_progress) as progress:
        task = progress.add_task(f"pipeline {pipe.name}", total=None)
        seen: set[str] = set()

        def on_step(step: StepRun) -> None:
            if step.status in _DONE and step.node not in seen:
                seen.add(step.node)
                progress.advance(task)
            if show_progress and step.status != "PENDING":
                progress.console.print(_step_line(step), soft_wrap=True)

        try:
            run = ws.run_pipeline(pipe, executor=executor, workers=workers,
                                  cache=not no_cache, experiment=experiment, params=params,
                                  on_step=on_step)
        except PipelineFailed as exc:
            progress.stop()
            _report(exc.run, json_)
            raise
    _report(run, json_)


def _report(run: PipelineRun, json_: bool) -> None:
    if json_:
        print_json(run)
    else:
        _show(run)


@pipeline_app.command("schedule")
def schedule_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(
        metavar="MODULE:PIPELINE", help="The @pipeline function, importable by the worker.")],
    cron: Annotated[str | None, typer.Option(
        "--cron", help="A cron expression in UTC, e.g. '0 3 * * *' (03:00 every day).")] = None,
    every: Annotated[str | None, typer.Option(
        "--every", help="Or a span, e.g. 6h (the first run is due at once).")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="NAME=VALUE",
        help="A pipeline parameter (repeatable; JSON when it parses, else text).")] = None,
    executor: Annotated[str, typer.Option(
        "--executor", "-e", help="local, processes or ray.")] = "local",
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Run every step each time.")] = False,
    name: Annotated[str | None, typer.Option(
        "--name", help="The schedule's name (default: pipeline:MODULE:PIPELINE).")] = None,
    json_: JsonOption = False,
) -> None:
    """Run a pipeline on a clock: `modelworks worker` runs it when due (audited); runs
    missed while no worker ran are reported, not replayed."""
    params = parse_params(param or [])
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    with global_options(ctx).open_workspace() as ws:
        found = ws.schedule_pipeline(target.strip(), cron=cron, every=every, params=params,
                                     executor=executor, cache=not no_cache, name=name)
    if json_:
        print_json(found)
        return
    clock = f"on cron '{found.cron}'" if found.cron else f"every {found.every}"
    Console(highlight=False).print(
        f"schedule {found.name}: pipeline {found.target} {clock} on {executor}; next run "
        f"{found.next_run_at:%Y-%m-%d %H:%M} UTC (run by `modelworks worker`)")


@pipeline_app.command("runs")
def runs_cmd(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline.")
                        ] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="Only runs with this status (RUNNING, FINISHED, FAILED).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")
                     ] = 20,
    json_: JsonOption = False,
) -> None:
    """Pipeline runs, newest first."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.pipeline_runs(pipeline, status=status, limit=limit)
    if json_:
        print_json(found)
        return
    t = table("id", "pipeline", "status", "executor", "steps", "cached", "started", "duration",
              options={"id": {"no_wrap": True}})
    for r in found:
        t.add_row(cell(r.id), cell(r.pipeline), status_text(r.status), cell(r.executor),
                  cell(len(r.steps)), cell(len(r.cached_steps)), cell(fmt_time(r.started_at)),
                  cell(fmt_duration(r.seconds)))
    console().print(t)


@pipeline_app.command("show")
def show_cmd(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A pipeline run id.")],
    json_: JsonOption = False,
) -> None:
    """One pipeline run: parameters, outputs and its steps."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.get_pipeline_run(run_id)
    _report(found, json_)


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
