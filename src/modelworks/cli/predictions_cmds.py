"""``modelworks predictions list|show``: read the prediction log.

Times are UTC, as the log keeps them: ``--since``/``--until`` take ISO 8601 (a date, or a
time; without an offset it is UTC) or a span back from now (``90s``, ``15m``, ``2h``,
``7d``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, fmt_number, kv_grid, print_json, table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["parse_time", "register"]

_CELL = 40

predictions_app = typer.Typer(help="Read the prediction log (what served models answered).",
                              no_args_is_help=True)


def parse_time(value: str | None, *, field: str) -> datetime | None:
    """ISO 8601 (naive = UTC) or a span back from now such as ``15m``."""
    if value is None:
        return None
    from ..monitoring.monitor import SPAN, parse_window

    text = value.strip()
    if SPAN.match(text):
        return datetime.now(UTC) - parse_window(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 time (2026-01-31, "
                           f"2026-01-31T12:00) or a span such as 15m, 2h, 7d; got {value!r}",
                           field=field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _utc(ts: Any) -> str:
    if isinstance(ts, float | int):
        ts = datetime.fromtimestamp(ts, UTC)
    return f"{ts.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"[:-3] + "Z"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        row["ts"] = row["ts"].isoformat()
        out.append(row)
    return out


@predictions_app.command("list")
def list_predictions(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="From this time (ISO 8601, UTC unless an offset is given; or 15m, "
        "2h, 7d back from now).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Before this time (same forms as --since).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="The newest N predictions.",
                                       min=1)] = 20,
    shadow: Annotated[bool, typer.Option(
        "--shadow", help="Include shadow answers (logged, never returned).")] = False,
    json_: JsonOption = False,
) -> None:
    """The newest predictions, newest first, with their labels when feedback arrived."""
    lo, hi = parse_time(since, field="--since"), parse_time(until, field="--until")
    with global_options(ctx).open_workspace() as ws:
        frame = ws.predictions(model, since=lo, until=hi, include_shadow=shadow,
                               with_feedback=True, limit=limit)
    frame = frame.iloc[::-1]
    if json_:
        print_json({"predictions": _records(frame)})
        return
    t = table("time (UTC)", "prediction id", "model", "endpoint", "output", "label",
              "latency ms", title="predictions",
              options={"latency ms": {"justify": "right"}, "output": {"overflow": "fold"}})
    for row in frame.itertuples(index=False):
        model_ref = f"{row.model}/{row.version}" + (" (shadow)" if row.shadow else "")
        t.add_row(cell(_utc(row.ts)), cell(row.prediction_id), cell(model_ref),
                  cell(row.endpoint), cell(_short(row.output)),
                  cell(None if row.label is None else _short(row.label)),
                  cell(fmt_number(row.latency_ms, digits=3)))
    console().print(t)


@predictions_app.command("show")
def show(
    ctx: typer.Context,
    prediction_id: Annotated[str, typer.Argument(help="REQUEST_ID:ROW, as the server "
                                                 "returned it.")],
    json_: JsonOption = False,
) -> None:
    """One prediction: when, which model version, its (filtered) inputs, output, label."""
    with global_options(ctx).open_workspace() as ws:
        record = ws.get_prediction(prediction_id)
        from ..serving.feedback import feedback_for

        label = feedback_for(ws.ctx, [record.prediction_id]).get(record.prediction_id)
    if json_:
        print_json({**record.model_dump(mode="json"), "label": label})
        return
    header = kv_grid([
        ("prediction", record.prediction_id),
        ("time (UTC)", _utc(record.ts)),
        ("model", f"models:/{record.model}/{record.version}"),
        ("endpoint", record.endpoint or ""),
        ("shadow", "yes (never returned)" if record.shadow else "no"),
        ("latency", f"{fmt_number(record.latency_ms, digits=3)} ms"),
        ("output", json.dumps(record.output, ensure_ascii=False, default=str)),
        ("probabilities", "" if record.proba is None else
         ", ".join(fmt_number(p, digits=4) for p in record.proba)),
        ("label", "" if label is None else json.dumps(label, ensure_ascii=False)),
    ])
    inputs = table("input", "value", title="inputs (as logged)",
                   options={"value": {"overflow": "fold"}})
    for name, value in record.inputs.items():
        inputs.add_row(cell(name), cell(json.dumps(value, ensure_ascii=False, default=str)))
    console().print(Group(header, Text(""), inputs))


def register(app: typer.Typer) -> None:
    app.add_typer(predictions_app, name="predictions")
