"""``modelworks worker``, ``retrain``, ``retrain-runs`` and ``schedules list|remove``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, fmt_time, kv_grid, print_json, table

if TYPE_CHECKING:
    from ..monitoring.retraining import RetrainResult

__all__ = ["register"]

schedules_app = typer.Typer(help="Schedules the worker runs (monitor runs, retraining).",
                            no_args_is_help=True)

_STATUS_STYLES = {"canary": "green", "ready": "green", "promoted": "bold green",
                  "withdrawn": "dim", "awaiting_approval": "yellow",
                  "running": "yellow", "rolling_out": "yellow", "failed": "bold red",
                  "rejected_by_policy": "red", "rejected": "red"}


def _uri(ref: str) -> str:
    from ..registry.uri import parse_model_uri

    return str(parse_model_uri(ref.strip()))


def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit (cron-style).")
                    ] = False,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between ticks.")] = 5.0,
    identity: Annotated[str | None, typer.Option(
        "--identity", help="Who the worker acts as (default: $MODELWORKS_WORKER_IDENTITY, "
                           "else modelworks-worker).")] = None,
    json_: JsonOption = False,
) -> int:
    """Run due schedules, retrain on alerts, roll out approved candidates, check canaries.

    Stops cleanly on SIGTERM or Ctrl-C (the current task finishes first).
    """
    import signal
    import threading

    from ..config import Settings
    from ..monitoring.worker import Worker
    from ..workspace import Workspace

    if not poll > 0:
        raise InvalidInput("--poll must be a positive number of seconds", field="poll")
    opts = global_options(ctx)
    who = identity or Settings().worker_identity
    log = Console(stderr=True, highlight=False)

    def echo(message: str) -> None:
        log.print(Text(f"{datetime.now().strftime('%H:%M:%S')} {message}"), soft_wrap=True)

    with Workspace(opts.workspace, artifacts=opts.artifacts, user=who) as ws:
        runner = Worker(ws, who, poll=poll, echo=echo)
        if once:
            try:
                report = runner.run_once()
            finally:
                runner.stop()
            if json_:
                print_json(report)
            elif report.idle:
                echo("nothing to do")
            return 1 if report.errors else 0
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            echo(f"{signal.Signals(signum).name}: stopping after the current task")
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            runner.run_forever(stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


def _show(result: RetrainResult) -> None:
    out = console()
    out.print(kv_grid([
        ("retrain run", result.id), ("model", result.model),
        ("trigger", f"{result.trigger} {result.trigger_id or ''}".strip()),
        ("status", Text(result.status, style=_STATUS_STYLES.get(result.status, ""))),
        ("candidate", result.candidate), ("actor", result.actor),
        ("message", result.message)]))
    t = table("step", "at", "details")
    for step in result.steps:
        shown = {k: v for k, v in step.details.items() if k != "message"}
        t.add_row(cell(step.name), cell(fmt_time(step.at)),
                  cell(", ".join(f"{k}={v}" for k, v in shown.items())[:300]))
    out.print(t)


def retrain(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    json_: JsonOption = False,
) -> None:
    """Retrain a model from its training spec now, as you (see docs/retraining.md)."""
    with global_options(ctx).open_workspace() as ws:
        result = ws.retrain(_uri(model_uri))
    if json_:
        print_json(result)
        return
    _show(result)


def retrain_runs(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's runs.")
                     ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    json_: JsonOption = False,
) -> None:
    """Retrain runs, newest first: trigger, status, candidate and what they wait for."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.retrain_runs(model, limit=limit)
    if json_:
        print_json(found)
        return
    t = table("run", "started", "model", "trigger", "status", "candidate", "message",
              title=f"retrain runs ({len(found)})")
    for r in found:
        t.add_row(cell(r.id[:12]), cell(fmt_time(r.started_at)), cell(r.model),
                  cell(f"{r.trigger} {(r.trigger_id or '')[:12]}".strip()),
                  Text(r.status, style=_STATUS_STYLES.get(r.status, "")),
                  cell(r.candidate), cell((r.message or "")[:160]))
    console().print(t)


@schedules_app.command("list")
def list_schedules(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Every schedule, when it runs next and how its last run went."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.schedules()
    if json_:
        print_json(found)
        return
    t = table("name", "kind", "target", "every", "next run", "last run", "last status",
              "last error", title=f"schedules ({len(found)})")
    for s in found:
        t.add_row(cell(s.name), cell(s.kind), cell(s.target), cell(s.every or f"cron {s.cron}"),
                  cell(fmt_time(s.next_run_at)), cell(fmt_time(s.last_run_at)),
                  cell(s.last_status), cell((s.last_error or "")[:120]))
    console().print(t)


@schedules_app.command("remove")
def remove_schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
) -> None:
    """Remove a schedule (audited)."""
    with global_options(ctx).open_workspace() as ws:
        ws.unschedule(name)
    console().print(Text(f"schedule {name} removed"))


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("retrain")(retrain)
    app.command("retrain-runs")(retrain_runs)
    app.add_typer(schedules_app, name="schedules")
