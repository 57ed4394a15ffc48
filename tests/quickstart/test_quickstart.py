"""The quickstart: the claims generator, the tracked demo scenario and its console command."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import modelworks as mw
from modelworks.quickstart import (
    EXPERIMENT,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    SENSITIVE_COLUMNS,
    QuickstartSummary,
    generate_claims,
    run_quickstart,
)
from modelworks.quickstart.claims_data import AGE_BANDS, PROCEDURE_CODES, REGIONS

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [
    "claim_id", "member_age", "age_band", "sex", "region", "procedure_code", "provider_type",
    "claim_amount", "prior_claims", "days_since_last_claim", "in_network", "needs_review",
]  # fmt: skip
MODELS = {"LogisticRegression", "RandomForestClassifier", "HistGradientBoostingClassifier"}
METRICS = {"roc_auc", "accuracy", "f1", "precision", "recall", "log_loss"}


def _cli_importable() -> bool:
    try:
        return importlib.util.find_spec("modelworks.cli.main") is not None
    except ModuleNotFoundError:
        return False


# -- the generator ----------------------------------------------------------------------------


def test_same_seed_same_table_other_seed_other_table() -> None:
    first = generate_claims(3000, seed=11)
    pd.testing.assert_frame_equal(first, generate_claims(3000, seed=11))
    other = generate_claims(3000, seed=12)
    assert not first["claim_amount"].equals(other["claim_amount"])
    pd.testing.assert_frame_equal(generate_claims(50), generate_claims(50, seed=7, drift=0.0))


def test_schema_and_values() -> None:
    df = generate_claims(20_000, seed=3)
    assert list(df.columns) == COLUMNS and len(df) == 20_000
    assert pd.api.types.is_string_dtype(df["claim_id"]) and df["claim_id"].is_unique
    for col in ("member_age", "prior_claims", LABEL_COLUMN):
        assert pd.api.types.is_integer_dtype(df[col]), col
    for col in ("age_band", "sex", "region", "procedure_code", "provider_type"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
    assert df["claim_amount"].dtype == np.float64 and df["in_network"].dtype == bool
    assert df["days_since_last_claim"].dtype == np.float64

    assert df["member_age"].between(18, 90).all()
    bands = pd.cut(df["member_age"], [17, 29, 44, 64, 90], labels=list(AGE_BANDS))
    assert (bands.astype(str) == df["age_band"].astype(str)).all()
    assert set(df["sex"].cat.categories) == {"F", "M"}
    assert list(df["region"].cat.categories) == list(REGIONS) and len(REGIONS) == 6
    assert list(df["procedure_code"].cat.categories) == list(PROCEDURE_CODES)
    assert len(PROCEDURE_CODES) == 30
    assert set(df["provider_type"].cat.categories) == {
        "hospital", "clinic", "specialist", "lab", "pharmacy"}
    assert (df["claim_amount"] > 0).all() and df["claim_amount"].skew() > 3  # log-normal tail
    assert (df["prior_claims"] >= 0).all()
    days = df["days_since_last_claim"]
    assert 0.05 < days.isna().mean() < 0.4
    assert (days.dropna() >= 1).all() and (days.dropna() == days.dropna().round()).all()
    assert days[df["prior_claims"] == 0].isna().all()  # no earlier claim, no date
    assert set(df[LABEL_COLUMN].unique()) == {0, 1}
    assert set(FEATURE_COLUMNS) < set(COLUMNS) and not set(SENSITIVE_COLUMNS) & set(
        FEATURE_COLUMNS)


def test_unequal_region_frequencies_and_long_tail_of_procedures() -> None:
    df = generate_claims(50_000, seed=5)
    regions = df["region"].value_counts(normalize=True)
    assert regions.max() > 3 * regions.min()
    procs = df["procedure_code"].value_counts(normalize=True)
    assert procs.iloc[0] > 0.15 and procs.iloc[:5].sum() > 0.5 and (procs > 0).all()


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_label_rate_and_a_mild_age_band_disparity(seed: int) -> None:
    df = generate_claims(20_000, seed=seed)
    assert 0.15 <= df[LABEL_COLUMN].mean() <= 0.25
    by_band = df.groupby("age_band", observed=True)[LABEL_COLUMN].mean()
    assert by_band["65+"] - by_band["30-44"] > 0.02  # something for fairness checks to find
    assert by_band["65+"] - by_band["30-44"] < 0.15  # but mild


def test_drift_moves_amounts_and_mix_but_not_the_schema() -> None:
    base = generate_claims(20_000, seed=9)
    drifted = generate_claims(20_000, seed=9, drift=1.0)
    half = generate_claims(20_000, seed=9, drift=0.5)
    assert drifted.dtypes.equals(base.dtypes)
    for col in ("region", "procedure_code", "provider_type"):
        assert list(drifted[col].cat.categories) == list(base[col].cat.categories)
    medians = [d["claim_amount"].median() for d in (base, half, drifted)]
    assert medians[0] < medians[1] < medians[2] and medians[2] > 1.3 * medians[0]

    def total_variation(col: str, other: pd.DataFrame) -> float:
        p = base[col].value_counts(normalize=True)
        q = other[col].value_counts(normalize=True)
        return 0.5 * float((p - q.reindex(p.index)).abs().sum())

    assert total_variation("region", drifted) > 0.15
    assert total_variation("procedure_code", drifted) > 0.15
    assert total_variation("region", half) < total_variation("region", drifted)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_rows": 0}, "n_rows"),
        ({"n_rows": -5}, "n_rows"),
        ({"n_rows": 2.5}, "n_rows"),
        ({"n_rows": "100"}, "n_rows"),
        ({"n_rows": True}, "n_rows"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": None}, "seed"),
        ({"drift": -0.1}, "drift"),
        ({"drift": 1.01}, "drift"),
        ({"drift": math.nan}, "drift"),
        ({"drift": "high"}, "drift"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(mw.InvalidInput) as info:
        generate_claims(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field and field in str(info.value)


def test_quickstart_refuses_too_few_rows(tmp_path: Path) -> None:
    with pytest.raises(mw.InvalidInput) as info:
        run_quickstart(tmp_path / "qs", n_rows=50)
    assert info.value.field == "n_rows"
    assert not (tmp_path / "qs").exists()  # refused before anything was created


# -- the scenario -----------------------------------------------------------------------------


Quickstart = tuple[Path, QuickstartSummary, QuickstartSummary, str]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Quickstart:
    """The scenario run twice on one folder: (folder, first, second, first console output)."""
    directory = tmp_path_factory.mktemp("quickstart") / "qs"
    out = io.StringIO()
    first = run_quickstart(directory, console=Console(file=out, width=250), n_rows=1500,
                           automl_budget_s=6)
    second = run_quickstart(directory, console=Console(file=io.StringIO()), n_rows=1500,
                            automl_budget_s=6)
    return directory, first, second, out.getvalue()


def test_three_finished_runs_that_learned_something(quickstart: Quickstart) -> None:
    directory, first, _, _ = quickstart
    with mw.Workspace(directory) as ws:
        runs = [ws.get_run(rid) for rid in first.run_ids]
    assert len(runs) == 3 and {r.params["model"] for r in runs} == MODELS
    for run in runs:
        assert run.status == "FINISHED" and run.experiment == EXPERIMENT
        assert set(run.metrics) >= METRICS
        assert run.metrics["roc_auc"] > 0.7, (run.params["model"], run.metrics)
        assert 0 < run.metrics["log_loss"] < 0.6
        assert run.tags == {"team": "risk", "stage": "baseline"}
        assert run.params["seed"] == "7" and run.params["train_rows"] == "1125"
    best = max(runs, key=lambda r: r.metrics["roc_auc"])
    assert first.best_run_id == best.id and first.best_model == best.params["model"]
    assert first.best_roc_auc == pytest.approx(best.metrics["roc_auc"])
    assert first.experiment == EXPERIMENT and first.workspace == directory.resolve()


def test_datasets_logged_and_linked_to_every_run(quickstart: Quickstart) -> None:
    directory, first, _, _ = quickstart
    assert first.dataset_versions == ["claims-train:1", "claims-holdout:1"]
    with mw.Workspace(directory) as ws:
        train, holdout = ws.get_dataset("claims-train", 1), ws.get_dataset("claims-holdout")
        assert (train.row_count, holdout.row_count) == (1125, 375)
        frame = ws.load_dataset(holdout)
        assert list(frame.columns) == COLUMNS
        assert frame[LABEL_COLUMN].mean() == pytest.approx(
            ws.load_dataset(train)[LABEL_COLUMN].mean(), abs=0.01)  # stratified
        for rid in first.run_ids:
            used = {d.role: (d.dataset, d.version) for d in ws.get_run(rid).datasets}
            assert used == {"train": ("claims-train", 1), "validation": ("claims-holdout", 1)}
        assert ws.verify_audit().ok


def test_histories_and_the_evaluation_artifact(quickstart: Quickstart) -> None:
    directory, first, _, _ = quickstart
    with mw.Workspace(directory) as ws:
        by_model = {ws.get_run(rid).params["model"]: ws.get_run(rid) for rid in first.run_ids}
        forest = by_model["RandomForestClassifier"]
        steps = [p.step for p in ws.metric_history(forest.id, "holdout_roc_auc_by_trees")]
        assert steps == [25, 50, 100, 150]
        boosting = by_model["HistGradientBoostingClassifier"]
        val = ws.metric_history(boosting.id, "validation_loss")
        train = ws.metric_history(boosting.id, "train_loss")
        assert len(val) == len(train) == boosting.metrics["n_iter"] + 1 > 5
        assert [p.step for p in val] == list(range(len(val)))
        assert train[-1].value < train[0].value  # boosting lowered its training loss

        for run in by_model.values():
            (entry,) = run.artifacts
            assert entry.path == "evaluation.json"
            report = json.loads(ws.read_artifact(run.id, entry.path))
            assert report["features"] == list(FEATURE_COLUMNS)
            matrix = report["confusion_matrix"]["matrix"]
            assert np.array(matrix).shape == (2, 2) and np.sum(matrix) == 375
            tn, fp = matrix[0]
            assert report["metrics"]["accuracy"] == pytest.approx(
                (tn + matrix[1][1]) / 375) and fp >= 0


def test_running_again_reuses_data_versions_and_adds_runs(quickstart: Quickstart) -> None:
    directory, first, second, _ = quickstart
    assert second.dataset_versions == first.dataset_versions
    assert not set(second.run_ids) & set(first.run_ids)
    with mw.Workspace(directory) as ws:
        assert len(ws.dataset_versions("claims-holdout")) == 1
        assert len(ws.search_runs(experiment=EXPERIMENT)) == 6
        for a, b in zip(first.run_ids, second.run_ids, strict=True):  # same seed, same models
            ra, rb = ws.get_run(a), ws.get_run(b)
            assert ra.params["model"] == rb.params["model"]
            assert ra.metrics["roc_auc"] == pytest.approx(rb.metrics["roc_auc"])
        assert ws.verify_audit().ok


def test_console_shows_ranked_table_and_next_commands(quickstart: Quickstart) -> None:
    directory, first, _, text = quickstart
    assert "claims-train:1" in text and "holdout results" in text
    with mw.Workspace(directory) as ws:
        ranked = ws.search_runs(experiment=EXPERIMENT, order_by=["metrics.roc_auc DESC"],
                                filter=f"attributes.id IN ({', '.join(map(repr, first.run_ids))})")
    positions = [text.index(r.id) for r in ranked]
    assert positions == sorted(positions)  # best first
    assert f"runs show {first.best_run_id}" in text
    for command in ("runs list --experiment claims-triage", "datasets show claims-train",
                    "audit log", "audit verify"):
        assert command in text


# -- the console command and the docs ---------------------------------------------------------


@pytest.mark.skipif(not _cli_importable(), reason="modelworks.cli.main is not written yet")
def test_console_command_runs_the_demo(tmp_path: Path) -> None:
    target = tmp_path / "q"
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "modelworks.cli.main", "quickstart", "--dir", str(target)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "look further" in done.stdout
    with mw.Workspace(target) as ws:
        runs = ws.search_runs(experiment=EXPERIMENT)
        assert len(runs) == 3 and all(r.status == "FINISHED" for r in runs)
        assert ws.get_dataset("claims-train", 1).row_count == 3750
        assert ws.verify_audit().ok


def test_every_quickstart_model_registers_and_loads_safely(tmp_path: Path) -> None:
    """skops must load each demo pipeline without trusting anything beyond its policy."""
    import modelworks as mw
    from modelworks.quickstart import FEATURE_COLUMNS, LABEL_COLUMN
    from modelworks.quickstart import scenario as sc

    train, holdout = sc._split(generate_claims(800), 7)
    split = sc._Split(train[list(FEATURE_COLUMNS)], train[LABEL_COLUMN].to_numpy(),
                      holdout[list(FEATURE_COLUMNS)], holdout[LABEL_COLUMN].to_numpy())
    ws = mw.Workspace(tmp_path / "ws", user="alice")
    for spec in sc._MODELS:
        with ws.start_run("formats", name=spec.run_name) as run:
            model = spec.train(run, split, 7, lambda status: None)
        mv = ws.register_model(f"q-{spec.run_name}", model=model,
                               input_example=split.x_train.head())
        assert mv.format == "sklearn"
        loaded = ws.load_model(mv.uri)
        assert list(loaded.predict(split.x_holdout.head(20))) == list(
            model.predict(split.x_holdout.head(20)))
    ws.close()


def test_winner_is_validated_approved_promoted_and_carded(quickstart: Quickstart) -> None:
    directory, first, second, out = quickstart
    with mw.Workspace(directory) as ws:
        for summary in (first, second):
            (report,) = ws.validation_reports(summary.model_version)
            assert report.held_out and "roc_auc" in report.metrics
            decisions = ws.decisions(summary.model_version)
            assert [(d.decision, d.actor) for d in decisions] == [
                ("approved", "model-risk-validator")]
        assert ws.policy_evaluations(first.model_version)[-1].passed
        # the rerun's winner (trained on the old claims) regresses against the retrained
        # production version on the gate's comparison: refused, and production stays
        refused = ws.policy_evaluations(second.model_version)[0]
        assert not refused.passed
        assert second.production == "models:/claims-triage/2" and second.lifecycle is None
        assert [p.name for p in ws.policies()] == ["high-risk"]
        assert ws.get_model("claims-triage").lifecycle_status == "production"
        moves = ws.alias_history("claims-triage", "production")
        assert [(m.version, m.forced) for m in moves] == [(1, False), (2, False)]
        assert ws.verify_audit().ok
    card = first.model_card.read_text()
    assert card.startswith("<!DOCTYPE html>") and "Flag incoming insurance claims" in card
    assert "model-risk-validator" in card
    assert "promoted" in out and "model card" in out


def test_promoted_model_is_deployed_and_its_answers_logged(quickstart: Quickstart) -> None:
    directory, first, second, out = quickstart
    assert (first.served_requests, second.served_requests) == (4000, 0)
    with mw.Workspace(directory) as ws:
        deployment = ws.get_deployment("claims")
        assert [r.model for r in deployment.routes] == ["models:/claims-triage@production"]
        log = ws.predictions("claims-triage", with_feedback=True)
        assert len(log) == 4000 and set(log["endpoint"]) == {"claims"}
        # the winner served, then the retrained candidate as a canary beside it
        assert set(log["version"].astype(int)) == {1, 2}
        assert log["label"].notna().all()
    assert "traffic: stable period" in out and "canary" in out


def test_drift_alert_retraining_canary_promotion(quickstart: Quickstart) -> None:
    directory, first, _, out = quickstart
    life = first.lifecycle
    assert life is not None
    assert life.stable_drift_share < 0.3 < life.shifted_drift_share
    assert {"claim_amount", "procedure_code"} <= set(life.drifted_columns)
    assert "dataset-drift" in life.alerts
    assert life.retrain_status == "awaiting_approval"  # high risk: a validator decides
    assert life.candidate == "models:/claims-triage/2"
    assert life.canary_verdict == "pass"
    assert life.production == "models:/claims-triage/2"
    assert life.audit_ok
    with mw.Workspace(directory) as ws:
        runs = ws.retrain_runs("claims-triage")
        assert [(r.candidate_version, r.status) for r in runs] == [(2, "promoted")]
        for run in runs:
            assert run.actor == "modelworks-worker" and run.trigger == "alert"
            assert ws.alert(run.trigger_id).rule == "dataset-drift"
            decisions = ws.decisions(run.candidate)
            assert [(d.decision, d.actor) for d in decisions] == [
                ("approved", "model-risk-validator")]
        moves = ws.alias_history("claims-triage", "production")
        assert [m.version for m in moves] == [1, 2]
        # retrained by the pipeline modelworks.quickstart.training:retraining
        trained = ws.get_run(str(ws.get_model_version("claims-triage", 2).run_id))
        piped = ws.get_pipeline_run(trained.tags["pipeline_run"])
        assert piped.status == "FINISHED" and piped.created_by == "modelworks-worker"
        assert [s.step.rpartition(":")[2] for s in piped.steps] == ["prepare", "train"]
        assert ws.canary_analyses("claims")[0].verdict == "pass"
        assert ws.verify_audit().ok
    reports = directory / "reports"
    page = (reports / "lifecycle-claims-triage.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 3
    assert "dataset-drift" in page and "modelworks-worker" in page
    assert not re.search(r"(src|href)=\"https?://", page)  # self-contained
    assert (reports / "drift-claims-triage-v1.html").exists()
    assert (reports / "validation-claims-triage-v2.html").exists()
    lines = (reports / "alerts.jsonl").read_text().splitlines()
    assert any(json.loads(line)["rule"] == "dataset-drift" for line in lines)
    assert "alert" in out and "promoted   endpoint claims" in out
