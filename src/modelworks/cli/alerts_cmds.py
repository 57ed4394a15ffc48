"""``modelworks alerts list|show`` and ``modelworks monitor plan set|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from . import global_options
from ._output import JsonOption, cell, console, fmt_time, kv_grid, print_json, table

__all__ = ["register"]

alerts_app = typer.Typer(help="Alerts raised by monitoring plans.", no_args_is_help=True)
plan_app = typer.Typer(help="A model's monitoring plan: alert rules, sinks, schedule.",
                       no_args_is_help=True)

_SEVERITY = {"info": "cyan", "warning": "yellow", "critical": "bold red"}


def _status(status: str) -> Text:
    return Text(status, style="bold" if status == "firing" else "dim")


@alerts_app.command("list")
def list_(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="A registered model name.")
                     ] = None,
    status: Annotated[str | None, typer.Option("--status", help="firing or suppressed.")
                      ] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 (UTC) or a span back "
                                              "from now, e.g. 1d.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
    json_: JsonOption = False,
) -> None:
    """Stored alerts, newest first."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.alerts(model, status=status, since=since, limit=limit)
    if json_:
        print_json(found)
        return
    t = table("alert", "when", "model", "rule", "severity", "metric", "value", "threshold",
              "status", "action", title=f"alerts ({len(found)})")
    for a in found:
        t.add_row(cell(a.id[:12]), cell(fmt_time(a.created_at)), cell(f"{a.model}/{a.version}"),
                  cell(a.rule), Text(a.severity, style=_SEVERITY.get(a.severity, "")),
                  cell(a.metric), cell(a.value), cell(f"{a.op} {a.threshold:g}"
                                                      if a.threshold is not None else None),
                  _status(a.status), cell(a.action))
    console().print(t)


@alerts_app.command("show")
def show(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="An alert id.")],
    json_: JsonOption = False,
) -> None:
    """One alert and where it was delivered."""
    with global_options(ctx).open_workspace() as ws:
        alert = ws.alert(alert_id)
        deliveries = ws.alert_deliveries(alert_id)
    if json_:
        print_json({"alert": alert.model_dump(mode="json"),
                    "deliveries": [d.model_dump(mode="json") for d in deliveries]})
        return
    out = console()
    out.print(kv_grid([("alert", alert.id), ("model", f"{alert.model}/{alert.version}"),
                       ("rule", alert.rule), ("severity", alert.severity),
                       ("status", alert.status), ("message", alert.message),
                       ("action", alert.action), ("monitor run", alert.monitor_run_id),
                       ("plan version", alert.plan_version),
                       ("raised", fmt_time(alert.created_at)), ("by", alert.created_by)]))
    t = table("sink", "target", "status", "attempts", "last error",
              title=f"deliveries ({len(deliveries)})")
    for d in deliveries:
        t.add_row(cell(d.sink), cell(d.target), cell(d.status), cell(d.attempts),
                  cell(d.last_error))
    out.print(t)


@plan_app.command("set")
def plan_set(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A registered model name.")],
    file: Annotated[Path, typer.Argument(help="The plan's YAML file.")],
    json_: JsonOption = False,
) -> None:
    """Store the model's monitoring plan (its next version unless the file is unchanged)."""
    with global_options(ctx).open_workspace() as ws:
        plan = ws.set_monitoring_plan(model, file)
    if json_:
        print_json(plan)
        return
    console().print(Text(f"monitoring plan of {plan.model}: version {plan.version}, "
                         f"{len(plan.spec.rules)} rule(s), "
                         f"{', '.join(s.type for s in plan.spec.sinks) or 'no'} sink(s)"))


@plan_app.command("show")
def plan_show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A registered model name.")],
    version: Annotated[int | None, typer.Option("--version", help="A plan version "
                                                "(default: the current one).")] = None,
    json_: JsonOption = False,
) -> None:
    """The model's monitoring plan: rules, sinks and schedule."""
    with global_options(ctx).open_workspace() as ws:
        plan = ws.monitoring_plan(model, version=version)
    if json_:
        print_json(plan)
        return
    out = console()
    schedule = plan.spec.schedule
    out.print(kv_grid([("model", plan.model), ("version", plan.version),
                       ("sha256", plan.sha256), ("set", fmt_time(plan.created_at)),
                       ("by", plan.created_by),
                       ("sinks", ", ".join(s.type for s in plan.spec.sinks) or "none"),
                       ("schedule", f"every {schedule.every}, window "
                                    f"{schedule.window or schedule.every}" if schedule
                        else "none")]))
    t = table("rule", "metric", "condition", "severity", "cooldown", "action",
              title=f"rules ({len(plan.spec.rules)})")
    for r in plan.spec.rules:
        t.add_row(cell(r.name), cell(r.metric), cell(f"{r.op} {r.threshold:g}"),
                  Text(r.severity, style=_SEVERITY.get(r.severity, "")), cell(r.cooldown),
                  cell(r.action))
    out.print(t)


def register(app: typer.Typer) -> None:
    from .monitor_cmds import monitor_app

    app.add_typer(alerts_app, name="alerts")
    monitor_app.add_typer(plan_app, name="plan")
