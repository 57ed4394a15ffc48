"""``modelworks datasets list`` and ``datasets show NAME[:VERSION]``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Group

from ..records import DatasetVersion
from . import global_options
from ._output import JsonOption, cell, console, fmt_number, fmt_time, kv_grid, print_json, table

__all__ = ["register"]

_TOP_CATEGORIES = 3

datasets_app = typer.Typer(help="List and inspect dataset versions.", no_args_is_help=True)


@datasets_app.command("list")
def list_datasets(ctx: typer.Context, json_: JsonOption = False) -> None:
    """All datasets, with their latest version."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.list_datasets()
    if json_:
        print_json(found)
        return
    t = table("name", "latest", "versions", "created", "created by", title="datasets",
              options={"latest": {"justify": "right"}, "versions": {"justify": "right"}})
    for ds in found:
        t.add_row(cell(ds.name), cell(ds.latest_version), cell(ds.version_count),
                  cell(ds.created_at), cell(ds.created_by))
    console().print(t)


def _stat(value: Any, kind: str) -> str:
    """A numeric statistic; datetime columns are profiled in epoch seconds."""
    if value is None or isinstance(value, str):  # str: a non-finite value rendered for JSON
        return "" if value is None else value
    if kind == "datetime":  # the column's own clock, not converted to local time
        return datetime.fromtimestamp(float(value), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return fmt_number(float(value))


def _top(categorical: dict[str, Any] | None, is_identifier: bool) -> str:
    if is_identifier:
        return "(identifier: values not kept)"
    if not categorical:
        return ""
    counts: dict[str, int] = categorical.get("counts") or {}
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_CATEGORIES]
    text = ", ".join(f"{name} ({n})" for name, n in best)
    distinct = categorical.get("distinct")
    if distinct is not None and distinct > len(best):
        text += f" … {distinct} distinct"
    return text


def _profile_table(dv: DatasetVersion) -> Any:
    t = table("column", "dtype", "kind", "missing", "min", "max", "mean", "top categories",
              title="schema and profile",
              options={name: {"justify": "right"} for name in ("missing", "min", "max", "mean")})
    profiles = {c.get("name"): c for c in dv.profile.get("columns", [])}
    for name, dtype in dv.columns.items():
        col = profiles.get(name, {})
        kind = str(col.get("kind", ""))
        numeric = col.get("numeric") or {}
        identifier = bool(col.get("is_identifier"))
        missing = col.get("missing")
        count = col.get("count") or 0
        missing_text = "" if missing is None else (
            f"{missing} ({missing / count:.0%})" if count and missing else str(missing))
        t.add_row(
            cell(name), cell(dtype), cell(kind), cell(missing_text),
            cell(_stat(numeric.get("min"), kind)), cell(_stat(numeric.get("max"), kind)),
            cell(_stat(numeric.get("mean"), kind) if numeric.get("count") else ""),
            cell(_top(col.get("categorical"), identifier)),
        )
    return t


@datasets_app.command("show")
def show_dataset(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]",
                                       help="A dataset, optionally with a version number "
                                       "(default: the latest).")],
    json_: JsonOption = False,
) -> None:
    """One dataset version: schema, rows, content hash and column profile."""
    from ..data.datasets import parse_dataset_ref  # pandas loads only for dataset commands

    name, version = parse_dataset_ref(ref)
    with global_options(ctx).open_workspace() as ws:
        dv = ws.get_dataset(name, version)
    if json_:
        print_json(dv)
        return
    header = kv_grid([
        ("dataset", f"{dv.name}:{dv.version}"),
        ("uri", dv.uri),
        ("rows", dv.row_count),
        ("columns", len(dv.columns)),
        ("content hash", dv.content_hash),
        ("artifact sha256", dv.artifact_sha256),
        *([("source", dv.source)] if dv.source else []),
        ("created", f"{fmt_time(dv.created_at)} by {dv.created_by}"),
    ])
    console().print(Group(header, _profile_table(dv)))


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
