"""Shared rendering: JSON on stdout for machines, Rich tables for people.

JSON is written with ``sys.stdout.write`` so Rich never wraps, colours or re-flows it. Every
user-supplied string reaches Rich as a ``Text`` object, never as markup, so a run named
``[bold]x`` prints as written.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "JsonOption",
    "cell",
    "console",
    "fmt_bytes",
    "fmt_duration",
    "fmt_number",
    "fmt_time",
    "kv_grid",
    "print_json",
    "status_text",
    "table",
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON to stdout instead of a table.")
]

_STATUS_STYLES = {"FINISHED": "green", "FAILED": "red", "RUNNING": "yellow"}
# Piped output is read by grep and scripts, not squeezed into 80 columns: full ids, no folds.
_PIPE_WIDTH = 200


def console() -> Console:
    """A console on the current stdout (looked up per call, so test runners can swap it)."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = max(out.width, _PIPE_WIDTH)
    return out


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: render them as strings, as the records do."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def print_json(data: BaseModel | Sequence[BaseModel] | Mapping[str, Any]) -> None:
    """Records via ``model_dump(mode="json")``; lists of records as a JSON array."""
    if isinstance(data, BaseModel):
        body: Any = data.model_dump(mode="json")
    elif isinstance(data, Mapping):
        body = dict(data)
    else:
        body = [item.model_dump(mode="json") for item in data]
    sys.stdout.write(json.dumps(_finite(body), indent=2, ensure_ascii=False, allow_nan=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def cell(value: Any) -> Text:
    """A table cell holding ``value`` verbatim (no markup); None is an empty cell."""
    if value is None:
        return Text("")
    if isinstance(value, Text):
        return value
    if isinstance(value, float):
        return Text(fmt_number(value))
    if isinstance(value, datetime):
        return Text(fmt_time(value))
    return Text(str(value))


def table(*columns: str, title: str | None = None,
          options: Mapping[str, Mapping[str, Any]] | None = None) -> Table:
    """A table with these headers; ``options`` maps a header to its Column kwargs."""
    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold",
              box=box.SIMPLE_HEAD)
    for name in columns:
        t.add_column(name, **(options or {}).get(name, {}))
    return t


def kv_grid(rows: Iterable[tuple[str, Any]]) -> Table:
    """Two aligned columns, ``label  value``, for a record's header fields."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, cell(value))
    return grid


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def fmt_time(value: datetime | None) -> str:
    """Local time to the second (timestamps are stored in UTC)."""
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_number(value: float | int | None, *, digits: int = 6) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def fmt_bytes(size: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, i = float(size), 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    return f"{size} B" if i == 0 else f"{value:.1f} {units[i]}"
