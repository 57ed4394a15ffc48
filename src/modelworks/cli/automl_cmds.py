"""``modelworks automl``: search models for a labelled data set, with a live leaderboard."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from . import global_options
from ._output import JsonOption, cell, console, fmt_number, kv_grid, print_json, table

if TYPE_CHECKING:  # pandas and the automl package load only when the command runs
    import pandas as pd

    from ..automl import AutoMLResult

__all__ = ["leaderboard_table", "register"]

_STATE_STYLES = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan"}


def _params_text(params: Any, width: int = 60) -> str:
    if not isinstance(params, dict):
        return ""
    text = ", ".join(f"{k}={fmt_number(v, digits=3) if isinstance(v, float) else v}"
                     for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def leaderboard_table(board: pd.DataFrame, *, metric: str, top: int,
                      title: str | None = None) -> Any:
    """The first ``top`` rows of a leaderboard as a Rich table."""
    numeric = {"justify": "right"}
    t = table("rank", "trial", "family", metric, "± std", "folds", "seconds", "state",
              "params", title=title,
              options={"rank": numeric, "trial": numeric, metric: numeric, "± std": numeric,
                       "folds": numeric, "seconds": numeric})
    for row in board.head(top).itertuples(index=False):
        t.add_row(cell(None if row.rank is None or str(row.rank) == "<NA>" else int(row.rank)),
                  cell(int(row.trial)), cell(row.family),
                  cell(fmt_number(row.score, digits=4) if row.score == row.score else ""),
                  cell(fmt_number(row.score_std, digits=2) if row.score_std == row.score_std
                       else ""),
                  cell(int(row.folds)),
                  cell(f"{row.seconds:.2f}" if row.seconds == row.seconds else ""),
                  Text(str(row.state), style=_STATE_STYLES.get(str(row.state), "")),
                  cell(_params_text(row.params)))
    return t


def _summary(res: AutoMLResult) -> Any:
    return kv_grid([
        ("best", f"{res.best_family} (trial {res.best_trial}; {res.selection})"),
        (res.metric, fmt_number(res.best_score, digits=4) + f" (cross-validated, "
                     f"{'higher' if res.direction == 'maximize' else 'lower'} is better)"),
        ("model", res.model_version.uri if res.model_version else "not registered"),
        ("trials", ", ".join(f"{v} {k}" for k, v in res.counts.items())),
        ("study", res.study_name), ("parent run", res.parent_run_id),
        ("time", f"{res.seconds:.1f} s on {res.executor} ({res.workers} "
                 f"worker{'s' if res.workers != 1 else ''})"),
    ])


def automl_command(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(
        metavar="DATA", help="Training data: a CSV or Parquet file, or dataset:NAME[:VERSION].")],
    label: Annotated[str, typer.Option("--label", "-l", help="The label column.")],
    task: Annotated[str | None, typer.Option(
        "--task", help="classification or regression (default: inferred).")] = None,
    metric: Annotated[str | None, typer.Option(
        "--metric", "-m", help="roc_auc, average_precision, log_loss, accuracy, "
        "balanced_accuracy, f1, f1_macro, r2, rmse, mae (default: roc_auc for binary, "
        "accuracy for multi-class (balanced_accuracy if imbalanced), r2 for regression).")
    ] = None,
    time_budget: Annotated[float, typer.Option(
        "--time-budget", "-t", help="Seconds for the whole search, refit and registration.")
    ] = 120,
    executor: Annotated[str, typer.Option(
        "--executor", "-e", help="local, processes or ray.")] = "local",
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Parallel search workers (default: the executor's CPUs).")] = None,
    register_as: Annotated[str | None, typer.Option(
        "--register-as", metavar="NAME", help="Model name (default: <label>-automl).")
    ] = None,
    no_register: Annotated[bool, typer.Option(
        "--no-register", help="Search and refit, but do not register the best model.")
    ] = False,
    families: Annotated[str | None, typer.Option(
        "--families", metavar="A,B", help="Model families to search (default: all installed: "
        "linear, hist_gradient_boosting, lightgbm, random_forest, extra_trees, xgboost).")
    ] = None,
    cv: Annotated[int, typer.Option("--cv", help="Cross-validation folds.")] = 5,
    max_trials: Annotated[int | None, typer.Option(
        "--max-trials", help="Stop after about this many trials.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of folds, sampler and models.")] = 0,
    prefer_simple: Annotated[bool, typer.Option(
        "--prefer-simple/--best-score", help="Register a linear model when it is within one "
        "standard error of the best score (default), or always the best score.")] = True,
    top: Annotated[int, typer.Option("--top", help="Leaderboard rows shown.")] = 15,
    json_: JsonOption = False,
) -> None:
    """Search model families and hyperparameters (Optuna) within a time budget; every trial
    is a tracked run; the best model is refitted and registered with its signature."""
    names = [f.strip() for f in families.split(",") if f.strip()] if families else None
    live_console = Console(stderr=True) if json_ else console()
    started = time.monotonic()
    metric_name = metric or "score"

    def render(board: pd.DataFrame) -> Any:
        done = int(board["state"].isin(["COMPLETE", "PRUNED", "FAIL"]).sum())
        elapsed = time.monotonic() - started
        head = Text(f"{done} trials in {elapsed:.0f} s of {time_budget:g} s", style="bold")
        return Group(head, leaderboard_table(board, metric=metric_name, top=top))

    with global_options(ctx).open_workspace() as ws, \
            Live(Text("starting the search ..."), console=live_console, transient=True,
                 refresh_per_second=4) as live:
        res = ws.automl(data, label=label, task=task, metric=metric,
                        time_budget_s=time_budget, executor=executor, workers=workers,
                        cv=cv, seed=seed, register_as=register_as, register=not no_register,
                        families=names, max_trials=max_trials, prefer_simple=prefer_simple,
                        progress=lambda board: live.update(render(board)))
    if json_:
        print_json(res.to_dict(top=top))
        return
    out = console()
    out.print(_summary(res))
    out.print(leaderboard_table(res.leaderboard, metric=res.metric, top=top,
                                title="leaderboard"))


def register(app: typer.Typer) -> None:
    app.command("automl", no_args_is_help=True)(automl_command)
