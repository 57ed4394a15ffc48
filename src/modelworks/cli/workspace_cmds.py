"""``modelworks init`` and ``modelworks db upgrade``."""

from __future__ import annotations

import typer
from rich.text import Text

from ..config import Settings, redact, resolve_location
from ..store.database import Database
from . import global_options
from ._output import JsonOption, console, kv_grid, print_json

__all__ = ["register"]

db_app = typer.Typer(help="Manage the metadata database.", no_args_is_help=True)


def init(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Create the workspace (or open an existing one) and show where it keeps its data."""
    with global_options(ctx).open_workspace() as ws:
        database, artifacts = redact(ws.location.db_url), ws.location.artifacts
        admins, revision = ws.admins, ws.db.current_revision()
        user = ws.actor
    if json_:
        print_json({"database": database, "artifacts": artifacts, "user": user,
                    "admins": admins, "schema_revision": revision})
        return
    out = console()
    out.print("workspace ready", style="bold green")
    out.print(kv_grid([
        ("database", database),
        ("artifacts", artifacts),
        ("admins", ", ".join(admins)),
        ("you are", user),
        ("schema", revision),
    ]))


@db_app.command("upgrade")
def upgrade(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Upgrade the database schema to the head revision (a no-op when already there).

    Works on a PostgreSQL team store whose schema is behind, which a Workspace refuses to open.
    """
    opts = global_options(ctx)
    settings = Settings()
    artifacts = opts.artifacts if opts.artifacts is not None else settings.artifacts
    # `db upgrade` touches the database only: a team store needs no artifact root for it.
    location = resolve_location(opts.workspace, artifacts=artifacts, settings=settings,
                                require_artifacts=False)
    db = Database(location.db_url)
    try:
        before = db.current_revision()
        head = db.head_revision()
        db.upgrade()
        after = db.current_revision()
    finally:
        db.dispose()
    database = redact(location.db_url)
    if json_:
        print_json({"database": database, "before": before, "after": after, "head": head})
        return
    out = console()
    where = Text(database)
    if before == after:
        out.print(Text.assemble("database ", where, f" is already at head revision {head}"))
    else:
        out.print(Text.assemble("upgraded database ", where, ": ",
                                f"{before or '(empty)'} -> {after} (head)"))


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(db_app, name="db")
