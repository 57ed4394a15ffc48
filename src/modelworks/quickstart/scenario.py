"""The quickstart: claims data in, three tracked, lineage-linked baseline models out.

``run_quickstart`` is what ``modelworks quickstart`` (and ``make demo``) runs. It opens a
workspace, versions a train and a holdout split of the synthetic claims table, trains three
scikit-learn models as runs of the experiment ``claims-triage`` and prints where to look next.
Running it again on the same folder reuses the dataset versions and adds three new runs.
"""

from __future__ import annotations

import json
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from ..errors import InvalidInput, NotFound, PolicyViolation
from ..records import RunRecord
from ..tracking.active_run import ActiveRun
from ..workspace import Workspace
from .claims_data import FEATURE_COLUMNS, LABEL_COLUMN, SENSITIVE_COLUMNS, generate_claims
from .lifecycle import ENDPOINT, LifecycleSummary, run_lifecycle

__all__ = [
    "EXPERIMENT",
    "HOLDOUT_DATASET",
    "RUN_TAGS",
    "TRAIN_DATASET",
    "QuickstartSummary",
    "run_quickstart",
]

EXPERIMENT = "claims-triage"
AUTOML_EXPERIMENT = "claims-triage-automl"
TRAIN_DATASET = "claims-train"
HOLDOUT_DATASET = "claims-holdout"
RUN_TAGS = {"team": "risk", "stage": "baseline"}
REGISTERED_MODEL = "claims-triage"
CANDIDATE_ALIAS = "staging"
PRODUCTION_ALIAS = "production"
POLICY = "builtin:high-risk"
VALIDATOR = "model-risk-validator"  # a second, declared actor: the independent reviewer
CARD_TEXT = {
    "intended_use": "Flag incoming insurance claims for manual review so reviewers see the "
                    "riskiest claims first. Decision support: a person decides every claim.",
    "out_of_scope_uses": "Denying or paying a claim automatically; fraud prosecution; any "
                         "use on populations other than the insurer's own claims.",
    "limitations": "Trained on synthetic claims; scores are not calibrated for other "
                   "insurers, products or years.",
    "ethical_considerations": "Sex and age band are not features, but proxies may remain: "
                              "the validation report measures parity across both.",
    "caveats": "Re-validate when claim mix or procedure codes change.",
}
HOLDOUT_FRACTION = 0.25
MIN_ROWS = 200  # below this a stratified holdout has too few positives to score

_CATEGORICAL = ["region", "procedure_code", "provider_type"]
_COUNTS = ["prior_claims", "days_since_last_claim"]
_RF_STEPS = (25, 50, 100, 150)  # trees after each warm-start step

Advance = Callable[[str], None]


class QuickstartSummary(BaseModel):
    """What the quickstart made: where, which runs, which data versions, and the winner."""

    model_config = ConfigDict(frozen=True)

    workspace: Path
    experiment: str
    run_ids: list[str]
    best_run_id: str
    best_model: str
    best_roc_auc: float
    dataset_versions: list[str]  # "name:version"
    model_version: str  # models:/NAME/VERSION of the registered winner
    production: str | None  # the version holding production (None: the gate refused)
    model_card: Path  # the winner's model card (HTML)
    served_requests: int  # claims sent through the deployed endpoint (0: not deployed)
    lifecycle: LifecycleSummary | None  # drift, alert, retraining, canary (None: not deployed)
    seconds: float


@dataclass(frozen=True)
class _Split:
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_holdout: pd.DataFrame
    y_holdout: np.ndarray


@dataclass(frozen=True)
class _ModelSpec:
    model: str  # the estimator's class name, logged as the param "model"
    run_name: str
    steps: int  # progress steps the trainer reports, evaluation and logging excluded
    train: Callable[[ActiveRun, _Split, int, Advance], ClassifierMixin]


# -- the three trainers: each logs its params and training history ----------------------------


def _train_logistic(run: ActiveRun, split: _Split, seed: int, advance: Advance
                    ) -> ClassifierMixin:
    params = {"C": 1.0, "max_iter": 1000, "solver": "lbfgs"}
    run.log_params({"model": "LogisticRegression", **params, "encoding": "one-hot",
                    "scaling": "standard", "claim_amount_transform": "log1p"})
    prep = ColumnTransformer([
        ("amount", make_pipeline(FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                                 StandardScaler()), ["claim_amount"]),
        ("counts", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                 StandardScaler()), _COUNTS),
        ("categories", OneHotEncoder(handle_unknown="ignore"), _CATEGORICAL),
        ("flags", "passthrough", ["in_network"]),
    ])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(random_state=seed, **params))])
    model.fit(split.x_train, split.y_train)
    run.log_metric("n_iter", int(model[-1].n_iter_[0]))
    advance("fitted")
    return model


def _train_forest(run: ActiveRun, split: _Split, seed: int, advance: Advance
                  ) -> ClassifierMixin:
    params = {"min_samples_leaf": 3, "max_features": "sqrt"}
    run.log_params({"model": "RandomForestClassifier", "n_estimators": _RF_STEPS[-1],
                    **params, "encoding": "ordinal"})
    prep = ColumnTransformer(
        [("categories", OrdinalEncoder(), _CATEGORICAL)], remainder="passthrough"
    ).fit(split.x_train)
    x_train, x_holdout = prep.transform(split.x_train), prep.transform(split.x_holdout)
    forest = RandomForestClassifier(warm_start=True, random_state=seed, **params)
    history = []
    for trees in _RF_STEPS:  # warm start: each fit adds trees to the forest already grown
        forest.set_params(n_estimators=trees).fit(x_train, split.y_train)
        auc = roc_auc_score(split.y_holdout, forest.predict_proba(x_holdout)[:, 1])
        history.append(("holdout_roc_auc_by_trees", float(auc), trees))
        advance(f"{trees} trees")
    run.log_batch(metrics=history)
    return Pipeline([("prep", prep), ("model", forest)])


def _train_boosting(run: ActiveRun, split: _Split, seed: int, advance: Advance
                    ) -> ClassifierMixin:
    params = {"learning_rate": 0.08, "max_iter": 300, "max_leaf_nodes": 15,
              "l2_regularization": 1.0, "early_stopping": True, "validation_fraction": 0.15,
              "n_iter_no_change": 15}
    run.log_params({"model": "HistGradientBoostingClassifier", **params,
                    "categorical_features": "from_dtype"})
    model = HistGradientBoostingClassifier(categorical_features="from_dtype",
                                           random_state=seed, **params)
    model.fit(split.x_train, split.y_train)
    advance("fitted")
    # Scores are negated losses; the first entry is the model before any iteration.
    run.log_batch(metrics=[
        *((("train_loss", -float(s), i)) for i, s in enumerate(model.train_score_)),
        *((("validation_loss", -float(s), i)) for i, s in enumerate(model.validation_score_)),
    ])
    run.log_metric("n_iter", int(model.n_iter_))
    return model


_MODELS = (
    _ModelSpec("LogisticRegression", "logistic-regression", 1, _train_logistic),
    _ModelSpec("RandomForestClassifier", "random-forest", len(_RF_STEPS), _train_forest),
    _ModelSpec("HistGradientBoostingClassifier", "hist-gradient-boosting", 1, _train_boosting),
)


# -- evaluation -------------------------------------------------------------------------------


def _evaluate(model: ClassifierMixin, split: _Split) -> tuple[dict[str, float], list[list[int]]]:
    proba = model.predict_proba(split.x_holdout)[:, 1]  # type: ignore[attr-defined]
    pred = (proba >= 0.5).astype(int)
    y = split.y_holdout
    metrics = {
        "roc_auc": roc_auc_score(y, proba),
        "accuracy": accuracy_score(y, pred),
        "f1": f1_score(y, pred, zero_division=0),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "log_loss": log_loss(y, proba, labels=[0, 1]),
    }
    matrix = confusion_matrix(y, pred, labels=[0, 1]).tolist()
    return {k: float(v) for k, v in metrics.items()}, matrix


def _log_evaluation(run: ActiveRun, spec: _ModelSpec, matrix: list[list[int]],
                    metrics: dict[str, float]) -> None:
    report = {
        "model": spec.model,
        "features": list(FEATURE_COLUMNS),
        "label": LABEL_COLUMN,
        "threshold": 0.5,
        "confusion_matrix": {"labels": [0, 1], "rows": "actual", "columns": "predicted",
                             "matrix": matrix},
        "metrics": metrics,
    }
    with tempfile.TemporaryDirectory(prefix="modelworks-quickstart-") as tmp:
        path = Path(tmp) / "evaluation.json"
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        run.log_artifact(path)


# -- the scenario -----------------------------------------------------------------------------


def _check(n_rows: object, seed: object) -> None:
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < MIN_ROWS:
        raise InvalidInput(f"n_rows must be an integer of at least {MIN_ROWS}, got {n_rows!r}",
                           field="n_rows")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}", field="seed")


def _split(claims: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, holdout = train_test_split(claims, test_size=HOLDOUT_FRACTION, random_state=seed,
                                      stratify=claims[LABEL_COLUMN])
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description:<32}"), BarColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)


def run_quickstart(
    directory: Path,
    *,
    console: Console | None = None,
    n_rows: int = 5000,
    seed: int = 7,
    automl_budget_s: float = 20.0,
) -> QuickstartSummary:
    """Create (or reopen) a workspace at ``directory`` and run the claims-triage demo.

    Args:
        directory: the workspace folder; created when missing, reused when it exists.
        console: where progress and the summary go (a new stdout console by default).
        n_rows: claims to generate (at least 200); a quarter is held out for evaluation.
        seed: seed of the data, the split and the models: the same seed gives the same data
            versions and the same metrics.
        automl_budget_s: wall time of the AutoML search that picks the first production
            model (search, refit and registration).

    Returns:
        The summary: workspace, experiment, the new run ids, the best of them and the
        dataset versions used.

    Raises:
        InvalidInput: ``n_rows`` or ``seed`` is out of range.
    """
    _check(n_rows, seed)
    console = console or Console()
    started = time.perf_counter()
    directory = Path(directory)
    console.rule("[bold]modelworks quickstart: claims triage")
    with Workspace(directory) as ws:
        console.print(f"workspace  [cyan]{escape(str(ws.location.folder or directory))}[/] "
                      f"(as {escape(ws.actor)})")
        train, holdout = _split(generate_claims(n_rows, seed=seed), seed)
        train_v = ws.log_dataset(train, name=TRAIN_DATASET, source="quickstart:generate_claims")
        holdout_v = ws.log_dataset(holdout, name=HOLDOUT_DATASET,
                                   source="quickstart:generate_claims")
        for v in (train_v, holdout_v):
            console.print(f"dataset    [cyan]{v.name}:{v.version}[/] {v.row_count:,} rows, "
                          f"sha256 {v.content_hash[:12]}")
        split = _Split(train[list(FEATURE_COLUMNS)], train[LABEL_COLUMN].to_numpy(),
                       holdout[list(FEATURE_COLUMNS)], holdout[LABEL_COLUMN].to_numpy())

        run_ids: list[str] = []
        fitted: dict[str, Any] = {}
        # One thread for BLAS and OpenMP: on models this small, threads on a busy machine
        # (CI, two cores) spin-wait and cost up to ten times what they save.
        with threadpool_limits(limits=1), _progress(console) as progress:
            tasks = [progress.add_task(spec.run_name, total=spec.steps + 2, status="waiting",
                                       start=False) for spec in _MODELS]
            for spec, task in zip(_MODELS, tasks, strict=True):
                def advance(status: str, task: Any = task) -> None:
                    progress.update(task, advance=1, status=status)

                progress.start_task(task)
                progress.update(task, status="training")
                with ws.start_run(EXPERIMENT, name=spec.run_name, tags=RUN_TAGS) as run:
                    run.use_dataset(train_v, role="train")
                    run.use_dataset(holdout_v, role="validation")
                    run.log_params({"seed": seed, "train_rows": len(train)})
                    fit_started = time.perf_counter()
                    model = spec.train(run, split, seed, advance)
                    run.log_metric("fit_seconds", time.perf_counter() - fit_started)
                    metrics, matrix = _evaluate(model, split)
                    run.log_metrics(metrics)
                    advance(f"roc_auc {metrics['roc_auc']:.3f}")
                    _log_evaluation(run, spec, matrix, metrics)
                    advance(f"done, roc_auc {metrics['roc_auc']:.3f}")
                run_ids.append(run.id)
                fitted[run.id] = model

        quoted = ", ".join(f"'{rid}'" for rid in run_ids)
        ranked = ws.search_runs(experiment=EXPERIMENT, filter=f"attributes.id IN ({quoted})",
                                order_by=["metrics.roc_auc DESC"])
        best = ranked[0]
        console.print(_results_table(ranked))
        searched = _automl(ws, train, console, seed=seed, budget_s=automl_budget_s)
        mv = searched.model_version
        assert mv is not None  # registered by the search
        ws.update_model(REGISTERED_MODEL, risk_tier="high",
                        description="Flags claims for manual review (quickstart)")
        ws.set_alias(REGISTERED_MODEL, CANDIDATE_ALIAS, mv.version,
                     reason=f"AutoML winner ({searched.best_family}), cross-validated roc_auc "
                            f"{searched.best_score:.3f}; best baseline "
                            f"{best.params['model']} holdout roc_auc "
                            f"{best.metrics['roc_auc']:.3f}")
        console.print(f"registered [cyan]{mv.uri}[/] ({mv.format}, sha256 {mv.sha256[:12]}) "
                      f"as [bold]@{CANDIDATE_ALIAS}[/]; its trace:")
        console.print(escape(ws.trace(f"models:/{REGISTERED_MODEL}@{CANDIDATE_ALIAS}")
                             .render_tree()), highlight=False)
        card_path = _govern(ws, mv, holdout_v, directory, console)
        lifecycle = None
        holder = _holder(ws, REGISTERED_MODEL, PRODUCTION_ALIAS)
        if holder != mv.uri:  # e.g. a rerun: production holds an earlier run's retrained model
            console.print(f"[yellow]lifecycle skipped[/]: production holds {holder}, not this "
                          f"run's winner; run the quickstart on a new folder to see drift, "
                          "alerts, retraining and the canary")
        else:
            console.rule("[bold]in production: drift, alert, retraining, canary, promotion")
            lifecycle = run_lifecycle(ws, REGISTERED_MODEL, PRODUCTION_ALIAS,
                                      directory / "reports", console, seed=seed,
                                      validator=VALIDATOR)
        console.print(_look_further(directory, best.id))
        return QuickstartSummary(
            workspace=ws.location.folder or directory,
            experiment=EXPERIMENT,
            run_ids=run_ids,
            best_run_id=best.id,
            best_model=best.params["model"],
            best_roc_auc=best.metrics["roc_auc"],
            dataset_versions=[f"{v.name}:{v.version}" for v in (train_v, holdout_v)],
            model_version=mv.uri,
            production=_holder(ws, REGISTERED_MODEL, PRODUCTION_ALIAS),
            model_card=card_path,
            served_requests=lifecycle.requests if lifecycle else 0,
            lifecycle=lifecycle,
            seconds=time.perf_counter() - started,
        )


def _automl(ws: Workspace, train: pd.DataFrame, console: Console, *, seed: int,
            budget_s: float) -> Any:
    """The first production model comes from an AutoML search over the model families,
    on the same training split (features and label only), registered as the model."""
    features = train[[*FEATURE_COLUMNS, LABEL_COLUMN]]
    with console.status(f"AutoML: searching model families for {budget_s:g} s (Optuna TPE, "
                        "3-fold CV, pruning)..."):
        searched = ws.automl(features, label=LABEL_COLUMN, task="classification",
                             metric="roc_auc", time_budget_s=budget_s, cv=3, seed=seed,
                             register_as=REGISTERED_MODEL, experiment=AUTOML_EXPERIMENT)
    board = searched.leaderboard
    done = board[board["state"] == "COMPLETE"]
    pruned = searched.counts.get("pruned", 0)
    table = Table(title=f"AutoML leaderboard ({len(board)} trials, {pruned} pruned), best "
                        "first", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, collapse_padding=True)
    for column in ("rank", "family", "cv roc_auc", "seconds"):
        table.add_column(column, justify="right" if column != "family" else "left")
    for _, row in done.head(5).iterrows():
        table.add_row(str(row["rank"]), str(row["family"]), f"{row['score']:.4f}",
                      f"{row['seconds']:.1f}")
    console.print(table)
    console.print(f"automl     winner {searched.best_family} ({searched.selection}), "
                  f"cv roc_auc {searched.best_score:.3f}; study {searched.study_name}")
    return searched


def _govern(ws: Workspace, mv: Any, holdout: Any, directory: Path, console: Console) -> Path:
    """Validate, apply a shipped policy, approve as a second user, promote, write the card."""
    with console.status("validating on the holdout (metrics, fairness, explanations)..."):
        report = ws.validate(mv.uri, data=holdout, label=LABEL_COLUMN,
                             sensitive_features=list(SENSITIVE_COLUMNS))
    reports = directory / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    report_path = reports / f"validation-{mv.name}-v{mv.version}.html"
    report.save(report_path)
    auc = report.metrics["roc_auc"]
    console.print(f"validated  [cyan]{mv.uri}[/]: roc_auc {auc.value:.3f} "
                  f"[{auc.low:.3f}, {auc.high:.3f}], held out: {report.held_out}; "
                  f"report {escape(str(report_path))}")
    ws.update_model(mv.name, business_purpose="Prioritise claims for manual review")
    ws.update_model_card(mv.name, None, **CARD_TEXT)
    policy = ws.apply_policy(POLICY)
    console.print(f"policy     [cyan]{policy.name}[/] v{policy.version} "
                  f"({len(policy.spec.rules)} rules) applied by {escape(ws.actor)}")
    ws.grant_role(VALIDATOR, "validator")
    with Workspace(ws.location.db_url, artifacts=ws.location.artifacts,
                   user=VALIDATOR) as reviewer:
        reviewer.approve(mv.uri, reason="validation report reviewed: metrics, fairness and "
                                        "explanations within policy")
    console.print(f"approved   by [cyan]{VALIDATOR}[/] (validator, not the author)")
    try:
        ws.set_alias(mv.name, PRODUCTION_ALIAS, mv.version,
                     reason=f"passed policy {policy.name} v{policy.version}, approved")
    except PolicyViolation as refused:  # other seeds and sizes can miss a threshold: say so
        console.print(f"[bold red]refused[/]    {escape(str(refused))}")
    else:
        evaluation = ws.policy_evaluations(mv.uri)[0]
        rules = sum(len(o.rules) for o in evaluation.outcomes)
        console.print(f"promoted   [cyan]{mv.name}@{PRODUCTION_ALIAS}[/] -> version "
                      f"{mv.version}: the gate evaluated {rules} rules, all passed")
    card_path = reports / f"model-card-{mv.name}-v{mv.version}.html"
    card = ws.model_card(mv.name, mv.version, format="html")
    assert isinstance(card, str)
    card_path.write_text(card, encoding="utf-8")
    console.print(f"model card {escape(str(card_path))}")
    return card_path


def _holder(ws: Workspace, name: str, alias: str) -> str | None:
    try:
        return ws.resolve_model(f"models:/{name}@{alias}").uri
    except NotFound:
        return None


def _results_table(ranked: list[RunRecord]) -> Table:
    # Full run ids (for copying into `runs show`) still fit 80 columns with collapsed padding.
    table = Table(title=f"experiment {EXPERIMENT}: holdout results, best first",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("run id", style="cyan", no_wrap=True)
    table.add_column("model", no_wrap=True)
    for name in ("roc_auc", "f1", "seconds"):
        table.add_column(name, justify="right", no_wrap=True)
    for i, r in enumerate(ranked):
        duration = r.duration_seconds
        table.add_row(r.id, r.params.get("model", r.name).removesuffix("Classifier"),
                      f"{r.metrics['roc_auc']:.3f}", f"{r.metrics['f1']:.3f}",
                      "-" if duration is None else f"{duration:.1f}",
                      style="bold green" if i == 0 else None)
    return table


def _look_further(directory: Path, best_id: str) -> Panel:
    cmd = f"modelworks --workspace {shlex.quote(str(directory))}"
    lines = [
        (f"{cmd} runs list --experiment {EXPERIMENT}", "every run, newest first"),
        (f"{cmd} runs show {best_id}", "params, metrics, datasets, environment"),
        (f"{cmd} datasets show {TRAIN_DATASET}", "versions, schema and profile"),
        (f"{cmd} models show {REGISTERED_MODEL}@{CANDIDATE_ALIAS}",
         "the registered winner: format, sha256, signature"),
        (f"{cmd} policy evaluate {REGISTERED_MODEL}@{PRODUCTION_ALIAS}",
         "each policy rule, its outcome and why"),
        (f"{cmd} models card {REGISTERED_MODEL}@{PRODUCTION_ALIAS}",
         "the model card, from the record"),
        (f"{cmd} models inventory --format csv", "the model inventory"),
        (f"{cmd} deploy show {ENDPOINT}", "the endpoint: routes, shadows, history"),
        (f"{cmd} predictions list --model {REGISTERED_MODEL} --limit 10",
         "what the server answered, from the prediction log"),
        (f"{cmd} monitor runs {REGISTERED_MODEL}@{PRODUCTION_ALIAS}",
         "monitor runs: drift, quality, performance"),
        (f"{cmd} monitor report {REGISTERED_MODEL}/1 --out drift.html",
         "the drift report (HTML) of the first version"),
        (f"{cmd} alerts list --model {REGISTERED_MODEL}", "alerts raised by the monitoring plan"),
        (f"{cmd} retrain-runs --model {REGISTERED_MODEL}",
         "retraining: trigger, steps, candidate"),
        (f"{cmd} deploy canary-check {ENDPOINT}", "compare canary and main version now"),
        (f"{cmd} worker", "run schedules, retraining and canary checks continuously"),
        (f"{cmd} serve --models {REGISTERED_MODEL}@{PRODUCTION_ALIAS}",
         "serve it yourself (native, MLflow /invocations, Open Inference v2)"),
        (f"{cmd} audit log", "every change, who made it and when"),
        (f"{cmd} audit verify", "check the audit hash chain"),
    ]
    body = Group(*(f"[bold]{escape(c)}[/]\n  [dim]{why}[/]" for c, why in lines))
    return Panel(body, title="look further", expand=False)
