"""``modelworks monitor run|runs|report|schedule``: drift of a version's served predictions
or given data, its HTML/JSON report, and monitor runs on a clock."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from ..errors import InvalidInput
from . import global_options
from ._output import JsonOption, cell, console, fmt_time, print_json, table

if TYPE_CHECKING:
    from ..monitoring.monitor import MonitorResult

__all__ = ["register"]

monitor_app = typer.Typer(help="Monitor model versions for drift.", no_args_is_help=True)


def _uri(ref: str) -> str:
    from ..registry.uri import parse_model_uri

    return str(parse_model_uri(ref.strip()))


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    window: Annotated[str | None, typer.Option("--window", help="The last span of the "
                                               "prediction log, e.g. 1d, 12h.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601 (UTC).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="A CSV or Parquet file to "
                                              "compare instead of the log.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="The column of --data "
                                              "holding true labels.")] = None,
    segment: Annotated[list[str] | None, typer.Option(
        "--segment", help="A column to split the window by (repeatable).")] = None,
    reference: Annotated[str, typer.Option("--reference", help="training, validation or "
                                           "dataset:NAME[:VERSION]")] = "training",
    json_: JsonOption = False,
) -> None:
    """Compare a window of served predictions (or a file) with the version's reference:
    drift, data quality, performance, per segment with --segment."""
    import pandas as pd

    frame = None
    if data is not None:
        if not data.is_file():
            raise InvalidInput(f"--data {str(data)!r} is not a file", field="data")
        frame = pd.read_csv(data) if data.suffix.lower() == ".csv" else pd.read_parquet(data)
    if frame is None and window is None and since is None:
        window = "1d"
    with global_options(ctx).open_workspace() as ws:
        result = ws.monitor(_uri(model_uri), reference=reference, segments=segment).run(
            data=frame, window=window, since=since, until=until, label=label)
    if json_:
        print_json({**result.model_dump(mode="json"), "metrics": result.metrics()})
        return
    _print_run(result)


def _print_run(result: MonitorResult) -> None:
    out = console()
    drift = result.drift
    verdict = "DRIFT" if drift.dataset_drift else "no dataset drift"
    t = table("column", "method", "value", "threshold", "psi", "drifted",
              title=f"{result.model}/{result.version}: {result.rows:,} rows vs "
                    f"{result.reference} reference — {verdict} "
                    f"({drift.drifted_columns}/{drift.scored_columns} columns)")
    for c in drift.columns:
        t.add_row(cell(c.column), cell(c.method or c.status), cell(c.value),
                  cell(c.threshold), cell(result.psi.get(c.column)),
                  Text("yes", style="bold red") if c.drifted else cell("no"))
    out.print(t)
    quality = result.quality
    if quality is not None:
        flagged = quality.flagged
        title = (f"data quality: {quality.error_rows:,} rows with an error "
                 f"({quality.error_rate:.2%})")
        if not flagged:
            out.print(Text(f"{title}; no check flagged"))
        else:
            q = table("column", "check", "count", "rate", "detail", title=title)
            for check in flagged:
                q.add_row(cell(check.column), cell(check.check), cell(check.count),
                          cell(round(check.rate, 4)), cell(check.detail))
            out.print(q)
    perf = result.performance
    if perf is not None:
        p = table("metric", "value", "baseline", "drop",
                  title=f"performance: {perf.labelled_rows:,} of {perf.rows:,} rows labelled")
        for group, values, drops in (("", perf.metrics, perf.drop),
                                     ("estimated ", perf.estimated, perf.estimated_drop)):
            for name, value in values.items():
                p.add_row(cell(group + name), cell(value), cell(perf.baseline.get(name)),
                          cell(drops.get(name)))
        if perf.metrics or perf.estimated:
            out.print(p)
        else:
            out.print(Text(f"performance: {'; '.join(perf.notes) or 'no metrics'}"))
    if result.segments:
        s = table("segment", "rows", "drift share", "drifted columns", "quality errors",
                  "positive rate", "error rate", title=f"segments ({len(result.segments)})")
        for seg in result.segments:
            s.add_row(cell(f"{seg.column}={seg.value}"), cell(seg.rows),
                      cell(round(seg.drift.share, 3)),
                      cell(", ".join(seg.drifted_columns) or "—"),
                      cell(round(seg.quality.error_rate, 4)), cell(seg.positive_rate),
                      cell(seg.error_rate))
        out.print(s)


@monitor_app.command("runs")
def runs(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    json_: JsonOption = False,
) -> None:
    """Stored monitor runs of a version, newest first."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.monitor_runs(_uri(model_uri), limit=limit)
    if json_:
        print_json(found)
        return
    t = table("run", "when", "source", "rows", "drift share", "drifted columns",
              title=f"monitor runs ({len(found)})")
    for r in found:
        t.add_row(cell(r.id[:12]), cell(fmt_time(r.created_at)), cell(r.source),
                  cell(r.rows), cell(round(r.drift.share, 3)),
                  cell(", ".join(r.drifted_columns) or "—"))
    console().print(t)


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The HTML file to write "
                                             "(default: NAME-vVERSION-drift.html).")] = None,
    runs_: Annotated[int, typer.Option("--runs", help="Past runs in the trend.")] = 30,
    run_id: Annotated[str | None, typer.Option("--run", help="A monitor run id (or its "
                                               "first characters); default: the newest.")
                      ] = None,
    json_: JsonOption = False,
) -> None:
    """A self-contained HTML drift report of a monitor run (or, with --json, its data)."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.monitor_report(_uri(model_uri), runs=runs_, run_id=run_id)
    if json_:
        if out is not None:
            found.save(out)
        print_json(found)
        return
    path = found.save(out or Path(f"{found.model}-v{found.version}-drift.html"))
    out_console = console()
    out_console.print(Text(str(path)), soft_wrap=True)
    out_console.print(Text(f"{found.model}/{found.version}, run {found.run_id[:12]}: "
                           f"{found.drifted_columns}/{found.scored_columns} columns drifted"
                           f"{' (dataset drift)' if found.dataset_drift else ''}, "
                           f"{len(found.trend)} runs in the trend, {len(found.alerts)} alerts"))


@monitor_app.command("schedule")
def schedule(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/...")],
    every: Annotated[str | None, typer.Option("--every", help="How often, e.g. 30m, 1h, "
                                              "1d.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Or a cron expression (UTC), "
                                             "e.g. '0 3 * * *'; then give --window.")] = None,
    window: Annotated[str | None, typer.Option("--window", help="The span of the log each "
                                               "run reads (default: --every).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="The schedule's name (default: "
                                             "monitor:NAME@ALIAS).")] = None,
    reference: Annotated[str, typer.Option("--reference", help="training, validation or "
                                           "dataset:NAME[:VERSION]")] = "training",
    json_: JsonOption = False,
) -> None:
    """Run the monitor on a clock: `modelworks worker` runs it when due (audited)."""
    with global_options(ctx).open_workspace() as ws:
        found = ws.schedule_monitor(_uri(model_uri), every=every, cron=cron, window=window,
                                    name=name, reference=reference)
    if json_:
        print_json(found)
        return
    clock = f"every {found.every}" if found.every else f"on cron '{found.cron}'"
    console().print(Text(f"schedule {found.name}: monitor {found.target} {clock} "
                         f"over the last {found.options.get('window')}; next run "
                         f"{fmt_time(found.next_run_at)} (run by `modelworks worker`)"))


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
