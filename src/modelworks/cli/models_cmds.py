"""``modelworks models``: list, show and version the registry; move aliases; archive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, fmt_bytes, fmt_time, kv_grid, print_json, table

if TYPE_CHECKING:  # the registry package loads pandas: import it only when a command runs
    from ..registry.records import ModelVersion, RegisteredModel
    from ..registry.uri import ModelRef

__all__ = ["register"]

_STATUS_STYLES = {"registered": "green", "archived": "dim"}

models_app = typer.Typer(help="List and inspect registered models; move aliases.",
                         no_args_is_help=True)
alias_app = typer.Typer(help="Move, delete and trace model aliases.", no_args_is_help=True)
models_app.add_typer(alias_app, name="alias")

ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (recorded in the alias history and audit log).")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Move a protected alias (workspace admins only).")
]


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}→{version}" for alias, version in sorted(aliases.items()))


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def _parse_ref(ref: str) -> ModelRef | None:
    """A version or alias reference; None for a bare model name."""
    from ..registry.uri import parse_model_uri, validate_model_name

    body = ref.strip()
    if body.startswith("models:") or "/" in body or "@" in body:
        return parse_model_uri(body)
    validate_model_name(body)
    return None


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Option("--prefix", "-p", help="Only models whose name starts so.")
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", "-t", metavar="KEY=VALUE",
                                 help="Only models with this tag.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many models.")] = 100,
    json_: JsonOption = False,
) -> None:
    """Registered models by name, with risk tier, latest version, aliases and owner."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.list_models(prefix=prefix, tag=tag, limit=limit)
    if json_:
        print_json(found)
        return
    t = table("name", "risk tier", "latest", "aliases", "owner", "validation", "next review",
              title=f"models ({len(found)})", options={"latest": {"justify": "right"}})
    for model in found:
        review = model.next_review_date.isoformat() if model.next_review_date else "—"
        t.add_row(cell(model.name), cell(model.risk_tier), cell(model.latest_version),
                  cell(_aliases(model.aliases)), cell(model.owner),
                  cell(model.validation_status),
                  Text(f"{review} OVERDUE", style="bold red") if model.review_overdue
                  else cell(review))
    console().print(t)


def _versions_table(versions: Sequence[ModelVersion], *, title: str) -> object:
    t = table("version", "status", "aliases", "format", "run", "sha256", "created",
              "created by", title=title, options={"version": {"justify": "right"}})
    for v in versions:
        t.add_row(cell(v.version), _status(v.status), cell(", ".join(v.aliases)),
                  cell(v.format), cell(v.run_id), cell(v.sha256[:12]), cell(v.created_at),
                  cell(v.created_by))
    return t


def _model_view(model: RegisteredModel, versions: Sequence[ModelVersion]) -> Group:
    parts: list[object] = [kv_grid([
        ("model", model.name),
        ("description", model.description),
        ("risk tier", model.risk_tier),
        ("owner", model.owner),
        ("latest version", model.latest_version),
        ("aliases", _aliases(model.aliases)),
        ("created", f"{fmt_time(model.created_at)} by {model.created_by}"),
    ])]
    if model.tags:
        t = table("key", "value", title="tags", options={"value": {"overflow": "fold"}})
        for key in sorted(model.tags):
            t.add_row(cell(key), cell(model.tags[key]))
        parts.append(t)
    parts.append(_versions_table(versions, title=f"versions ({len(versions)})"))
    return Group(*parts)  # type: ignore[arg-type]


def _version_view(v: ModelVersion) -> Group:
    library = " ".join(p for p in (v.library, v.library_version) if p)
    parts: list[object] = [kv_grid([
        ("version", v.uri),
        ("status", _status(v.status)),
        ("aliases", ", ".join(v.aliases)),
        ("sha256", v.sha256),
        ("size", fmt_bytes(v.size)),
        ("format", v.format + (" (pickle allowed)" if v.allow_pickle else "")),
        ("library", library or None),
        ("run", v.run_id),
        ("description", v.description),
        ("created", f"{fmt_time(v.created_at)} by {v.created_by}"),
    ])]
    signature = v.signature or {}
    inputs = signature.get("inputs") or []
    if inputs:
        t = table("column", "dtype", "nullable", "categories",
                  title=f"signature (output: {signature.get('output') or 'unknown'})",
                  options={"categories": {"overflow": "fold"}})
        for col in inputs:
            categories = col.get("categories")
            t.add_row(cell(col.get("name")), cell(col.get("dtype")),
                      cell("yes" if col.get("nullable") else "no"),
                      cell(", ".join(categories) if categories else None))
        parts.append(t)
    else:
        parts.append(Text("no signature recorded", style="dim"))
    return Group(*parts)  # type: ignore[arg-type]


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="NAME[/VERSION|@ALIAS]",
                            help="A model name, or one version: NAME/3, NAME@staging, "
                            "models:/NAME/3.")
    ],
    json_: JsonOption = False,
) -> None:
    """A registered model and its versions, or one version in detail."""
    parsed = _parse_ref(ref)
    if parsed is None:
        with global_options(ctx).open_workspace() as ws:
            model = ws.get_model(ref.strip())
            versions = ws.model_versions(model.name)
        if json_:
            print_json({"model": model.model_dump(mode="json"),
                        "versions": [v.model_dump(mode="json") for v in versions]})
            return
        console().print(_model_view(model, versions))
        return
    with global_options(ctx).open_workspace() as ws:
        version = ws.resolve_model(str(parsed))
    if json_:
        print_json(version)
        return
    console().print(_version_view(version))


@models_app.command("versions")
def list_versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model's name.")],
    json_: JsonOption = False,
) -> None:
    """Every version of a model, oldest first."""
    with global_options(ctx).open_workspace() as ws:
        versions = ws.model_versions(name)
    if json_:
        print_json(versions)
        return
    console().print(_versions_table(versions, title=f"{name}: versions ({len(versions)})"))


@models_app.command("archive")
def archive_version(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME/VERSION", help="The version to archive.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (recorded in the audit log).")
    ] = None,
) -> None:
    """Archive a version (move or delete its aliases first)."""
    from ..registry.uri import parse_model_uri

    parsed = parse_model_uri(ref)
    if parsed.version is None:
        raise InvalidInput(f"archive needs an explicit version (NAME/3), got {ref!r}",
                           field="model_uri")
    with global_options(ctx).open_workspace() as ws:
        ws.archive_model_version(parsed.name, parsed.version, reason=reason)
    console().print(Text(f"archived {parsed}"))


@alias_app.command("set")
def set_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model's name.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. staging, production.")],
    version: Annotated[int, typer.Argument(metavar="VERSION", help="The version to point at.")],
    reason: ReasonOption,
    force: ForceOption = False,
) -> None:
    """Point ALIAS at VERSION (recorded in the alias history and audit log)."""
    with global_options(ctx).open_workspace() as ws:
        target = ws.set_alias(name, alias, version, reason=reason, force=force)
    console().print(Text(f"{name}@{alias} → {target.uri}"))


@alias_app.command("delete")
def delete_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model's name.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias to remove.")],
    reason: ReasonOption,
    force: ForceOption = False,
) -> None:
    """Remove ALIAS (recorded in the alias history and audit log)."""
    with global_options(ctx).open_workspace() as ws:
        ws.delete_alias(name, alias, reason=reason, force=force)
    console().print(Text(f"deleted {name}@{alias}"))


@alias_app.command("history")
def alias_history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model's name.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias to trace.")],
    json_: JsonOption = False,
) -> None:
    """Every move of ALIAS, oldest first."""
    with global_options(ctx).open_workspace() as ws:
        moves = ws.alias_history(name, alias)
    if json_:
        print_json(moves)
        return
    t = table("when", "from", "to", "actor", "forced", "reason",
              title=f"{name}@{alias}: history ({len(moves)})",
              options={"from": {"justify": "right"}, "to": {"justify": "right"},
                       "reason": {"overflow": "fold"}})
    for move in moves:
        t.add_row(cell(move.at), cell(move.previous_version),
                  cell("(deleted)" if move.version is None else move.version),
                  cell(move.actor), cell("yes" if move.forced else ""), cell(move.reason))
    console().print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
