"""``modelworks datasets list|show|scan|pseudonymize|tag``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

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


# -- data protection: scan, pseudonymize, tag ---------------------------------------------

DatasetArg = Annotated[str, typer.Argument(metavar="DATASET",
                                           help="NAME or NAME:VERSION (default: the latest).")]
VersionOption = Annotated[int | None, typer.Option("--version", min=1,
                                                   help="The version (or give NAME:VERSION).")]
ColumnsOption = Annotated[str, typer.Option("--columns", help="Comma-separated column names.")]


def _dataset_ref(ref: str, version: int | None) -> tuple[str, int | None]:
    from ..data.datasets import parse_dataset_ref
    from ..errors import InvalidInput

    name, in_ref = parse_dataset_ref(ref)
    if in_ref is not None and version is not None and in_ref != version:
        raise InvalidInput(f"{ref!r} names version {in_ref} but --version is {version}",
                           field="version")
    return name, in_ref if in_ref is not None else version


def _split(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",") if c.strip()]


@datasets_app.command("scan")
def scan_dataset(
    ctx: typer.Context,
    ref: DatasetArg,
    version: VersionOption = None,
    sample_rows: Annotated[int, typer.Option("--sample-rows", min=1,
                                             help="Rows sampled from large datasets.")] = 10_000,
    json_: JsonOption = False,
) -> None:
    """Find direct identifiers (emails, phones, national ids, cards, IBANs, IPs) in a version."""
    name, number = _dataset_ref(ref, version)
    with global_options(ctx).open_workspace() as ws:
        scan = ws.scan_dataset(name, number, sample_rows=sample_rows)
    if json_:
        print_json(scan)
        return
    t = table("column", "entity", "detector", "matches", "score",
              title=f"personal data in {scan.dataset}:{scan.version} "
                    f"({scan.rows_scanned} rows scanned)",
              options={"matches": {"justify": "right"}, "score": {"justify": "right"}})
    for f in scan.findings:
        t.add_row(cell(f.column), cell(f.entity_type), cell(f.detector),
                  cell(f.matches if f.detector == "pattern" else ""), cell(f"{f.score:.2f}"))
    console().print(t)
    flagged = scan.identifier_columns
    console().print(Text(f"tagged 'identifier': {', '.join(flagged)}" if flagged
                         else "no direct identifiers found"))


@datasets_app.command("pseudonymize")
def pseudonymize_dataset(
    ctx: typer.Context,
    ref: DatasetArg,
    columns: ColumnsOption,
    purpose: Annotated[str, typer.Option("--purpose", help="What the tokens are for; "
                                         "tokens of different purposes do not link.")
                       ] = "analytics",
    key_id: Annotated[str | None, typer.Option("--key-id", help="A configured key id "
                                               "(default: the active key).")] = None,
    version: VersionOption = None,
    json_: JsonOption = False,
) -> None:
    """Write a new version with COLUMNS replaced by keyed HMAC-SHA256 tokens.

    The key comes from MODELWORKS_PSEUDONYM_KEY (KEY_ID:SECRET) or
    MODELWORKS_PSEUDONYM_KEY_FILE, never from the workspace.
    """
    name, number = _dataset_ref(ref, version)
    with global_options(ctx).open_workspace() as ws:
        dv = ws.pseudonymize_dataset(name, number, columns=_split(columns), purpose=purpose,
                                     key_id=key_id)
    if json_:
        print_json(dv)
        return
    console().print(Text(f"wrote {dv.name}:{dv.version} ({dv.row_count} rows) with "
                         f"{', '.join(_split(columns))} pseudonymized for {purpose!r}"))


@datasets_app.command("tag")
def tag_dataset_columns(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="DATASET", help="The dataset's name.")],
    columns: ColumnsOption,
    tag: Annotated[str, typer.Option("--tag", help="The tag to set.")] = "sensitive",
    remove: Annotated[bool, typer.Option("--remove", help="Remove the tag instead.")] = False,
    json_: JsonOption = False,
) -> None:
    """Tag columns of a dataset (all versions), e.g. as sensitive."""
    with global_options(ctx).open_workspace() as ws:
        action = ws.untag_columns if remove else ws.tag_columns
        tags = action(name, _split(columns), tag)
    if json_:
        print_json(tags)
        return
    t = table("column", "tags", title=f"column tags of {name}")
    for column, names in tags.items():
        t.add_row(cell(column), cell(", ".join(names)))
    console().print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
