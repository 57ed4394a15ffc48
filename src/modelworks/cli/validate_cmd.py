"""``modelworks validate``: a validation report for a model version on labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from . import global_options
from ._output import JsonOption, cell, console, fmt_number, kv_grid, print_json, table

if TYPE_CHECKING:  # the governance package loads pandas: import it only when a command runs
    from ..governance.validation import ValidationReport

__all__ = ["register"]


def _names(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _show(report: ValidationReport, out: Path | None) -> None:
    con = console()
    con.print(kv_grid([
        ("model", report.uri), ("report", report.id), ("task", report.task),
        ("rows", f"{report.rows:,}"),
        ("held out", ("yes" if report.held_out else "NO") + f" ({report.held_out_reason})"),
        ("explanations", report.explanations.method if report.explanations else "none"),
    ]))
    compare = report.comparison if report.comparison and not report.comparison.error else None
    headers = ["metric", "value", "95% interval"]
    if compare is not None:
        headers += [f"{compare.alias} (v{compare.version})", "difference"]
    t = table(*headers, title="metrics", options={h: {"justify": "right"}
                                                  for h in headers[1:]})
    for name, m in report.metrics.items():
        interval = (f"{fmt_number(m.low, digits=4)} to {fmt_number(m.high, digits=4)}"
                    if m.low is not None else "-")
        row = [cell(name), cell(fmt_number(m.value, digits=4)), cell(interval)]
        if compare is not None:
            row += [cell(fmt_number(compare.metrics.get(name), digits=4)),
                    cell(fmt_number(compare.delta.get(name), digits=4))]
        t.add_row(*row)
    con.print(t)
    for feature in report.fairness.values():
        if feature.demographic_parity_difference is not None:
            con.print(f"fairness {feature.feature}: demographic parity difference "
                      f"{fmt_number(feature.demographic_parity_difference, digits=3)}, "
                      f"equalized odds difference "
                      f"{fmt_number(feature.equalized_odds_difference, digits=3)}",
                      markup=False, highlight=False)
    if out is not None:
        con.print(f"report page written to {out}", markup=False, highlight=False)


def validate_command(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(
        metavar="MODEL_URI", help="models:/NAME/VERSION, models:/NAME@ALIAS, NAME/VERSION or "
        "NAME@ALIAS.")],
    data: Annotated[Path, typer.Option("--data", "-d", metavar="FILE",
                                       help="Labelled data: a CSV or Parquet file.")],
    label: Annotated[str, typer.Option("--label", "-l", help="The label column.")],
    sensitive: Annotated[str | None, typer.Option(
        "--sensitive", "-s", metavar="A,B", help="Sensitive feature columns, comma-separated "
        "(fairness is reported across each).")] = None,
    task: Annotated[str | None, typer.Option(
        "--task", help="classification or regression (default: inferred).")] = None,
    n_bootstrap: Annotated[int, typer.Option(
        "--bootstrap", help="Bootstrap resamples for the intervals.")] = 200,
    explain_sample: Annotated[int, typer.Option(
        "--explain-sample", help="Rows explained (0: no explanations).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of resampling and sampling.")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FILE", help="Also write the HTML report page here.")] = None,
    json_: JsonOption = False,
) -> None:
    """Validate a model version: metrics with intervals, fairness, explanations, held-out
    check and a comparison with production; stored with the version and audited."""
    from ..governance.validation import validate

    status = Console(stderr=True).status(f"validating {model_uri} ...")
    with global_options(ctx).open_workspace() as ws, status:
        report = validate(ws.ctx, model_uri, data=data, label=label,
                          sensitive_features=_names(sensitive), task=task,
                          n_bootstrap=n_bootstrap, explain_sample=explain_sample, seed=seed,
                          progress=lambda stage: status.update(
                              f"validating {model_uri}: {stage} ..."))
    if out is not None:
        report.save(out)
    if json_:
        print_json(report)
        return
    _show(report, out)


def register(app: typer.Typer) -> None:
    app.command("validate", no_args_is_help=True)(validate_command)
