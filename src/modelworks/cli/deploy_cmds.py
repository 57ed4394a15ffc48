"""``modelworks deploy``: endpoints with a traffic split, canary, shadows, promote, rollback,
disable/enable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, fmt_time, kv_grid, print_json, table

if TYPE_CHECKING:  # the serving records pull in the registry: import them when a command runs
    from ..serving.deployments import Deployment, DeploymentEvent

__all__ = ["register"]

deploy_app = typer.Typer(
    help="Deployments (endpoints): traffic split, canary, shadows, promote, rollback, "
         "disable.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The deployment's name.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded and audited).")]
# `deploy promote NAME` and `deploy rollback NAME` are the documented short forms: without
# --reason the audit records that none was given (the actor and time are always recorded).
OptionalReason = Annotated[str | None, typer.Option(
    "--reason", help="Why (recorded and audited; default: 'no reason given').")]
_NO_REASON = "no reason given"
_URI_HELP = "NAME/VERSION, NAME@ALIAS or models:/..."


def _routes_text(dep: Deployment) -> str:
    return ", ".join(f"{r.model} {r.weight:g}%" for r in dep.routes)


def _status(dep: Deployment) -> Text:
    if dep.status == "active":
        return Text("active", style="green")
    target = f"→ {dep.fallback}" if dep.fallback else "503"
    return Text(f"disabled ({target}): {dep.disabled_reason}", style="bold red")


def _done(dep: Deployment, what: str, json_: bool) -> None:
    if json_:
        print_json(dep)
        return
    out = Text(f"{dep.name} {what}: ")
    out.append_text(_status(dep))
    out.append(f"; routes {_routes_text(dep)}")
    if dep.shadows:
        out.append(f"; shadows {', '.join(dep.shadows)}")
    console().print(out)


def _parse_route(value: str) -> tuple[str, float]:
    uri, sep, percent = value.strip().rpartition("=")
    try:
        share = float(percent)
    except ValueError:
        share = None
    if not sep or not uri or share is None:
        raise InvalidInput(f"--route must be URI=PERCENT (e.g. claims/4=10), got {value!r}",
                           field="route")
    return uri, share


@deploy_app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    model: Annotated[str, typer.Option("--model", help=f"The main entry: {_URI_HELP}.")],
    canary: Annotated[str | None, typer.Option("--canary", help="A canary version.")] = None,
    percent: Annotated[float, typer.Option("--percent", help="The canary's share (0-100).")
                       ] = 0,
    shadow: Annotated[list[str] | None, typer.Option(
        "--shadow", help="Gets a copy of each request; never answers (repeatable).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (audited).")] = None,
    json_: JsonOption = False,
) -> None:
    """Create an endpoint: --model gets 100-P percent of traffic, --canary P percent."""
    with global_options(ctx).open_workspace() as ws:
        dep = ws.create_deployment(name, model=model, canary=canary, percent=percent,
                                   shadows=shadow or [], reason=reason)
    _done(dep, "created", json_)


@deploy_app.command("traffic")
def traffic(
    ctx: typer.Context,
    name: NameArg,
    route: Annotated[list[str], typer.Option(
        "--route", metavar="URI=PERCENT", help="One entry of the split (repeatable; the "
        "percentages sum to 100).")],
    reason: ReasonOption,
    json_: JsonOption = False,
) -> None:
    """Replace the traffic split, e.g. --route claims@production=80 --route claims/4=20."""
    routes: dict[str, float] = {}
    for value in route:
        uri, share = _parse_route(value)
        if uri in routes:
            raise InvalidInput(f"--route names {uri} twice", field="route")
        routes[uri] = share
    with global_options(ctx).open_workspace() as ws:
        dep = ws.set_traffic(name, routes, reason=reason)
    _done(dep, "traffic set", json_)


@deploy_app.command("shadows")
def shadows(
    ctx: typer.Context,
    name: NameArg,
    reason: ReasonOption,
    shadow: Annotated[list[str] | None, typer.Option(
        "--shadow", help="A shadow URI (repeatable; none clears them).")] = None,
    json_: JsonOption = False,
) -> None:
    """Replace the shadows (each gets a copy of every request; answers are only logged)."""
    with global_options(ctx).open_workspace() as ws:
        dep = ws.set_shadows(name, shadow or [], reason=reason)
    _done(dep, "shadows set", json_)


@deploy_app.command("promote")
def promote(ctx: typer.Context, name: NameArg, reason: OptionalReason = None,
            json_: JsonOption = False) -> None:
    """The canary's version becomes the main entry (an alias moves, through the gate)."""
    with global_options(ctx).open_workspace() as ws:
        dep = ws.promote_deployment(name, reason=reason or _NO_REASON)
    _done(dep, "promoted", json_)


@deploy_app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: NameArg,
    reason: OptionalReason = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Break glass when the gate refuses (workspace admins only).")] = False,
    json_: JsonOption = False,
) -> None:
    """Undo the last traffic change or promotion (an alias it moved moves back)."""
    if force and not reason:
        raise InvalidInput("breaking glass with --force needs a --reason", field="reason")
    with global_options(ctx).open_workspace() as ws:
        dep = ws.rollback_deployment(name, reason=reason or _NO_REASON, force=force)
    _done(dep, "rolled back", json_)


@deploy_app.command("disable")
def disable(
    ctx: typer.Context,
    name: NameArg,
    reason: ReasonOption,
    fallback: Annotated[str | None, typer.Option(
        "--fallback", help=f"Serve every request with this model instead ({_URI_HELP}).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Switch the endpoint off at once: 503 with the reason, or all traffic to --fallback."""
    with global_options(ctx).open_workspace() as ws:
        dep = ws.disable_deployment(name, reason=reason, fallback=fallback)
    _done(dep, "disabled", json_)


@deploy_app.command("enable")
def enable(ctx: typer.Context, name: NameArg, reason: ReasonOption,
           json_: JsonOption = False) -> None:
    """Switch the endpoint back on, with its routes as they were."""
    with global_options(ctx).open_workspace() as ws:
        dep = ws.enable_deployment(name, reason=reason)
    _done(dep, "enabled", json_)


def _history_table(events: list[DeploymentEvent], *, title: str) -> Table:
    t = table("id", "when", "action", "by", "routes", "reason", title=title,
              options={"routes": {"overflow": "fold"}, "reason": {"overflow": "fold"}})
    for e in events:
        action = e.action + (" (forced)" if e.forced else "")
        if e.alias_change is not None:
            ch = e.alias_change
            action += f" [{ch.model}@{ch.alias} {ch.previous_version}→{ch.version}]"
        t.add_row(cell(e.id), cell(fmt_time(e.at)), cell(action), cell(e.actor),
                  cell(", ".join(f"{r.model} {r.weight:g}%" for r in e.routes)),
                  cell(e.reason))
    return t


@deploy_app.command("show")
def show(
    ctx: typer.Context,
    name: NameArg,
    last: Annotated[int, typer.Option("--last", "-n", help="History entries to show.")] = 10,
    json_: JsonOption = False,
) -> None:
    """Routes, shadows, status and recent history of an endpoint."""
    with global_options(ctx).open_workspace() as ws:
        dep = ws.get_deployment(name)
        events = ws.deployment_history(name)
    recent = events[-last:] if last > 0 else []
    if json_:
        print_json({"deployment": dep.model_dump(mode="json"),
                    "history": [e.model_dump(mode="json") for e in recent]})
        return
    routes = table("model", "percent", "role", title="routes",
                   options={"percent": {"justify": "right"}})
    for i, r in enumerate(dep.routes):
        routes.add_row(cell(r.model), cell(f"{r.weight:g}"),
                       cell("main" if i == 0 else "canary" if r.weight > 0 else "idle"))
    for s in dep.shadows:
        routes.add_row(cell(s), cell("copy"), cell("shadow"))
    console().print(Group(
        kv_grid([("deployment", dep.name), ("status", _status(dep)),
                 ("created", f"{fmt_time(dep.created_at)} by {dep.created_by}"),
                 ("updated", f"{fmt_time(dep.updated_at)} by {dep.updated_by}")]),
        routes,
        _history_table(recent, title=f"history (last {len(recent)} of {len(events)})"),
    ))


@deploy_app.command("history")
def history(ctx: typer.Context, name: NameArg, json_: JsonOption = False) -> None:
    """Every change of an endpoint, oldest first."""
    with global_options(ctx).open_workspace() as ws:
        events = ws.deployment_history(name)
    if json_:
        print_json(events)
        return
    console().print(_history_table(events, title=f"{name}: history ({len(events)})"))


@deploy_app.command("list")
def list_(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Every endpoint with its status and traffic split."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.deployments()
    if json_:
        print_json(found)
        return
    t = table("name", "status", "routes", "shadows", "updated", "by",
              title=f"deployments ({len(found)})", options={"routes": {"overflow": "fold"}})
    for dep in found:
        t.add_row(cell(dep.name), _status(dep), cell(_routes_text(dep)),
                  cell(", ".join(dep.shadows)), cell(fmt_time(dep.updated_at)),
                  cell(dep.updated_by))
    console().print(t)


@deploy_app.command("canary-check")
def canary_check(
    ctx: typer.Context,
    name: NameArg,
    window: Annotated[str | None, typer.Option(
        "--window", help="Read at most this far back, e.g. 1h (default: since the last "
        "traffic change).")] = None,
    no_rollback: Annotated[bool, typer.Option(
        "--no-rollback", help="Report only: leave a failed canary in the traffic.")] = False,
    json_: JsonOption = False,
) -> None:
    """Compare the canaries and shadows with the main entry; a failed canary leaves the
    traffic. Exit 0 pass, 1 fail, 3 inconclusive."""
    from ._canary_view import EXIT_CODES, analysis_view

    with global_options(ctx).open_workspace() as ws:
        analysis = ws.analyze_canary(name, window=window, rollback=not no_rollback)
    if json_:
        print_json(analysis)
    else:
        console().print(analysis_view(analysis))
    if EXIT_CODES[analysis.verdict]:
        raise typer.Exit(EXIT_CODES[analysis.verdict])


@deploy_app.command("canary-rules")
def canary_rules(
    ctx: typer.Context,
    name: NameArg,
    set_: Annotated[str | None, typer.Option(
        "--set", metavar="FILE", help="Replace the rules with this YAML file's.")] = None,
    json_: JsonOption = False,
) -> None:
    """The endpoint's canary rules (defaults where unset); --set FILE replaces them."""
    from pathlib import Path

    with global_options(ctx).open_workspace() as ws:
        rules = (ws.set_canary_rules(name, Path(set_)) if set_ is not None
                 else ws.canary_rules(name))
    if json_:
        print_json(rules)
        return
    console().print(kv_grid([(k, "off" if v is None else str(v))
                             for k, v in rules.model_dump().items()]))


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")
