"""``modelworks audit log`` and ``audit verify``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from . import global_options
from ._output import JsonOption, cell, console, print_json, table

__all__ = ["register"]

_DETAILS_WIDTH = 60

audit_app = typer.Typer(help="Read and verify the hash-chained audit log.",
                        no_args_is_help=True)


def _details(payload: dict[str, Any], reason: str | None) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str) if payload else ""
    if len(text) > _DETAILS_WIDTH:
        text = text[: _DETAILS_WIDTH - 1] + "…"
    return f"{text}  reason: {reason}" if reason else text


@audit_app.command("log")
def log(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many events.")] = 50,
    entity_type: Annotated[
        str | None, typer.Option("--entity-type", help="Only events about this kind of "
                                 "entity (run, dataset, dataset_version, workspace, ...).")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. run.created.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Audit events, newest first: who did what to which entity, and when."""
    with global_options(ctx).open_workspace() as ws:
        events = ws.audit_log(limit=limit, entity_type=entity_type, action=action)
    if json_:
        print_json(events)
        return
    t = table("seq", "time", "actor", "action", "entity", "details", title="audit log",
              options={"seq": {"justify": "right"}, "details": {"overflow": "fold"}})
    for ev in events:
        t.add_row(cell(ev.seq), cell(ev.ts), cell(ev.actor), cell(ev.action),
                  cell(f"{ev.entity_type}:{ev.entity_id}"), cell(_details(ev.payload, ev.reason)))
    console().print(t)


@audit_app.command("verify")
def verify(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Walk the hash chain; exit 1 at the first edited, deleted or reordered event."""
    with global_options(ctx).open_workspace() as ws:
        report = ws.verify_audit()
    if json_:
        print_json(report)
    elif report.ok:
        console().print(Text(f"audit chain intact: {report.events} events", style="green"))
    else:
        console().print(Text.assemble(
            ("audit chain broken", "bold red"),
            f" at seq {report.first_broken_seq}: {report.problem}",
        ))
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
