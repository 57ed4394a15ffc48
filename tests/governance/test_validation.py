"""Validation reports over SQLite and PostgreSQL: real models, real stored pages."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import select

import modelworks as mw
from modelworks.governance.inventory import next_review
from modelworks.governance.validation import latest_validation
from modelworks.store.tables import lineage_edges, model_versions, validation_reports

FEATURES = ["amount", "prior", "age"]


def claims(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.normal(100, 25, n), "prior": rng.integers(0, 5, n),
                       "age": rng.normal(45, 12, n), "sex": rng.choice(["f", "m"], n),
                       "region": rng.choice(["north", "south", "east"], n)})
    noise = rng.normal(0, 15, n)
    df["needs_review"] = ((df["amount"] + 12 * df["prior"] + noise) > 125).astype(int)
    df["cost"] = 2.0 * df["amount"] + 30 * df["prior"] + noise
    return df


@pytest.fixture
def train() -> pd.DataFrame:
    return claims(600, seed=1)


@pytest.fixture
def holdout() -> pd.DataFrame:
    return claims(900, seed=2)


def register(ws: mw.Workspace, train: pd.DataFrame, model: Any, *, name: str = "claims",
             label: str = "needs_review", log_train: bool = True,
             risk_tier: str = "high") -> mw.ModelVersion:
    x = train[FEATURES]
    with ws.start_run(experiment="validation") as run:
        if log_train:
            run.use_dataset(ws.log_dataset(train, name=f"{name}-train"), role="train")
        return ws.register_model(name, model=model.fit(x, train[label]), run=run,
                                 input_example=x.head(), risk_tier=risk_tier)


class _Page(HTMLParser):
    """Tags and the URL-bearing attributes of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for key, value in attrs:
            if key in ("src", "href", "xlink:href", "action", "data") and value:
                self.urls.append(value)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_classification_report_is_stored_audited_and_linked(
        workspace: mw.Workspace, train: pd.DataFrame, holdout: pd.DataFrame,
        tmp_path: Path) -> None:
    mv = register(workspace, train, RandomForestClassifier(n_estimators=30, max_depth=5,
                                                           random_state=0))
    report = workspace.validate(mv.uri, data=holdout, label="needs_review",
                                sensitive_features=["sex", "region"], n_bootstrap=100)

    assert (report.model, report.version, report.task, report.rows) == ("claims", 1,
                                                                        "classification", 900)
    assert set(report.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc",
                                   "log_loss", "brier"}
    model = workspace.load_model(mv.uri).model
    expected_acc = accuracy_score(holdout["needs_review"], model.predict(holdout[FEATURES]))
    expected_auc = roc_auc_score(holdout["needs_review"],
                                 model.predict_proba(holdout[FEATURES])[:, 1])
    assert report.metrics["accuracy"].value == pytest.approx(expected_acc)
    assert report.metrics["roc_auc"].value == pytest.approx(expected_auc)
    for name, m in report.metrics.items():
        assert m.low is not None and m.high is not None
        assert m.low <= m.value <= m.high, name
    assert report.confusion_matrix is not None
    assert sum(map(sum, report.confusion_matrix)) == 900
    assert report.calibration is not None and report.calibration.mean_predicted

    assert set(report.fairness) == {"sex", "region"}
    region = report.fairness["region"]
    assert sorted(g.group for g in region.groups) == ["east", "north", "south"]
    assert sum(g.count for g in region.groups) == 900
    assert {"selection_rate", "accuracy", "recall", "false_positive_rate"} <= set(
        region.groups[0].metrics)
    rates = [g.metrics["selection_rate"] for g in region.groups]
    assert region.demographic_parity_difference == pytest.approx(max(rates) - min(rates))
    assert region.equalized_odds_difference is not None

    assert report.explanations is not None
    assert report.explanations.method == "shap-tree"
    assert report.explanations.sample_rows == 900  # fewer rows than the 1,000 sample
    top = [f.feature for f in report.explanations.features]
    assert sorted(top) == sorted(FEATURES) and top[-1] == "age"  # age is pure noise

    assert report.held_out is True, report.held_out_reason
    assert report.held_out_check.overlap_rows == 0
    assert report.comparison is None  # nothing holds production yet

    # one row, one audit event, the inventory updated, lineage recorded
    with workspace.db.read() as conn:
        row = conn.execute(select(validation_reports)).one()
        mvid = conn.execute(select(model_versions.c.id)).scalar_one()
        edges = conn.execute(select(lineage_edges).where(
            lineage_edges.c.child_type == "validation_report")).all()
        latest = latest_validation(conn, mvid)
    assert row.id == report.id and row.held_out and row.has_explanations
    assert row.summary["metrics"]["roc_auc"]["value"] == pytest.approx(expected_auc)
    assert row.summary["fairness"]["sex"]["demographic_parity_difference"] is not None
    assert latest is not None and latest.id == report.id and latest.metrics == report.metrics
    assert [(e.parent_type, e.parent_id) for e in edges] == [("model_version", "claims/1")]
    events = workspace.audit_log(action="model_version.validated")
    assert len(events) == 1 and events[0].entity_id == "claims/1"
    assert events[0].payload["report_id"] == report.id
    assert events[0].payload["report_sha256"] == report.report_sha256
    model_rec = workspace.get_model("claims")
    assert model_rec.validation_status == "validated"
    assert model_rec.next_review_date == next_review("high", datetime.now(UTC).date())
    assert workspace.verify_audit().ok

    # the artifacts: the page and the JSON, sha256-addressed and verifiable
    page = report.html()
    assert hashlib.sha256(page.encode()).hexdigest() == report.html_sha256
    stored = workspace.artifacts.get_bytes(report.report_sha256)
    assert json.loads(stored)["id"] == report.id
    assert json.loads(stored)["html_sha256"] == report.html_sha256
    again = workspace.get_validation_report(report.id)
    assert again.html() == page and again == report
    assert [r.id for r in workspace.validation_reports("claims/1")] == [report.id]

    parsed = parse(page)
    assert parsed.tags.count("svg") == 3  # calibration, confusion matrix, top features
    assert not {"script", "link", "img", "iframe"} & set(parsed.tags)
    # only in-page references and inline data (the confusion matrix image), nothing fetched
    assert [u for u in parsed.urls if not u.startswith(("#", "data:"))] == []
    assert "claims version 1" in page and "held out" in page and "region" in page
    saved = report.save(tmp_path / "report.html")
    assert saved.read_text(encoding="utf-8") == page


def test_comparison_with_production_on_the_same_data(
        workspace: mw.Workspace, train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    first = register(workspace, train, LogisticRegression(max_iter=500))
    workspace.set_alias("claims", "production", first.version, reason="baseline", force=True)
    second = register(workspace, train, RandomForestClassifier(n_estimators=20, max_depth=4,
                                                               random_state=0))
    base = workspace.validate(first.uri, data=holdout, label="needs_review", n_bootstrap=0,
                              explain_sample=0)
    assert base.comparison is None  # it is the production version itself
    report = workspace.validate(second.uri, data=holdout, label="needs_review",
                                n_bootstrap=20, explain_sample=0)
    comparison = report.comparison
    assert comparison is not None and comparison.version == first.version
    assert comparison.error is None
    assert set(comparison.metrics) == {"accuracy", "f1", "roc_auc", "log_loss"}
    for name, value in comparison.metrics.items():
        assert value == pytest.approx(base.metrics[name].value)
        assert comparison.delta[name] == pytest.approx(report.metrics[name].value - value)
    assert report.explanations is None
    assert "production (v1)" in workspace.get_validation_report(report.id).html()


def test_training_data_is_not_held_out(workspace: mw.Workspace, train: pd.DataFrame,
                                       holdout: pd.DataFrame) -> None:
    mv = register(workspace, train, LogisticRegression(max_iter=500))
    same = workspace.validate(mv.uri, data=train, label="needs_review", n_bootstrap=0,
                              explain_sample=0)
    assert same.held_out is False and same.held_out_check.hash_match
    assert "training dataset version" in same.held_out_reason

    # a new frame (new hash) where a third of the rows are training rows
    mixed = pd.concat([holdout.iloc[:400], train.iloc[:200]], ignore_index=True)
    leaky = workspace.validate(mv.uri, data=mixed, label="needs_review", n_bootstrap=0,
                               explain_sample=0)
    assert leaky.held_out is False and not leaky.held_out_check.hash_match
    assert leaky.held_out_check.overlap_rows == 200
    assert leaky.held_out_check.overlap_fraction == pytest.approx(200 / 600)
    assert "200 of 600 rows" in leaky.held_out_reason

    # the same rows read back from CSV (float/int dtypes may differ) still overlap
    as_float = train.iloc[:50].astype({"prior": "float64"})
    mixed2 = pd.concat([holdout.iloc[:450].astype({"prior": "float64"}), as_float],
                       ignore_index=True)
    leaky2 = workspace.validate(mv.uri, data=mixed2, label="needs_review", n_bootstrap=0,
                                explain_sample=0)
    assert leaky2.held_out_check.overlap_rows == 50


def test_no_recorded_training_data_is_not_held_out(
        workspace: mw.Workspace, train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    mv = register(workspace, train, LogisticRegression(max_iter=500), log_train=False)
    report = workspace.validate(mv.uri, data=holdout, label="needs_review", n_bootstrap=0,
                                explain_sample=0)
    assert report.held_out is False
    assert "recorded no training dataset" in report.held_out_reason


def test_dataset_version_input_links_lineage(workspace: mw.Workspace, train: pd.DataFrame,
                                             holdout: pd.DataFrame) -> None:
    mv = register(workspace, train, LogisticRegression(max_iter=500))
    dv = workspace.log_dataset(holdout, name="claims-holdout")
    report = workspace.validate(mv.uri, data=dv, label="needs_review", n_bootstrap=0,
                                explain_sample=200)
    assert report.dataset == dv.uri and report.data_hash == dv.content_hash
    assert report.held_out
    assert report.explanations is not None and report.explanations.method == "shap-linear"
    with workspace.db.read() as conn:
        row = conn.execute(select(validation_reports)).one()
        parents = conn.execute(select(lineage_edges.c.parent_type, lineage_edges.c.parent_id)
                               .where(lineage_edges.c.child_id == report.id)).all()
    assert row.dataset_version_id == dv.id
    assert sorted(parents) == [("dataset_version", str(dv.id)), ("model_version", "claims/1")]
    down = workspace.lineage("dataset_version", str(dv.id), direction="down")
    assert any(n.type == "validation_report" for n in down.nodes)


def test_regression_pipeline_shap_names_transformed_features(
        workspace: mw.Workspace, train: pd.DataFrame, holdout: pd.DataFrame,
        tmp_path: Path) -> None:
    mv = register(workspace, train, make_pipeline(StandardScaler(), Ridge()), label="cost")
    path = tmp_path / "holdout.parquet"
    holdout.to_parquet(path)
    report = workspace.validate(mv.uri, data=path, label="cost", sensitive_features=["sex"],
                                n_bootstrap=50)
    assert report.task == "regression" and report.classes is None
    assert set(report.metrics) == {"mae", "rmse", "r2", "mape"}
    assert report.metrics["r2"].value is not None and report.metrics["r2"].value > 0.8
    assert report.calibration is None and report.confusion_matrix is None
    assert report.explanations is not None and report.explanations.method == "shap-linear"
    assert report.explanations.features[0].feature == "amount"
    group = report.fairness["sex"].groups[0]
    assert set(group.metrics) == {"mae"}
    assert report.fairness["sex"].demographic_parity_difference is None
    page = parse(report.html())
    assert page.tags.count("svg") == 1  # top features only


def test_permutation_importance_for_other_models_and_multiclass(
        workspace: mw.Workspace, train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    train = train.assign(band=pd.cut(train["amount"], [-np.inf, 90, 110, np.inf],
                                     labels=["low", "mid", "high"]).astype(str))
    holdout = holdout.assign(band=pd.cut(holdout["amount"], [-np.inf, 90, 110, np.inf],
                                         labels=["low", "mid", "high"]).astype(str))
    mv = register(workspace, train, KNeighborsClassifier(n_neighbors=7), label="band")
    report = workspace.validate(mv.uri, data=holdout, label="band", n_bootstrap=30,
                                explain_sample=150, sensitive_features=["sex"])
    assert report.task == "classification"
    assert report.classes == ["high", "low", "mid"]
    assert "brier" not in report.metrics and "roc_auc" in report.metrics
    assert report.explanations is not None and report.explanations.method == "permutation"
    assert "neither a tree nor a linear model" in report.explanations.reason
    assert report.explanations.features[0].feature == "amount"
    assert report.fairness["sex"].demographic_parity_difference is None  # multiclass
    assert {"accuracy"} == set(report.fairness["sex"].groups[0].metrics)


def test_task_can_be_overridden(workspace: mw.Workspace, train: pd.DataFrame,
                                holdout: pd.DataFrame) -> None:
    mv = register(workspace, train, LogisticRegression(max_iter=500))
    report = workspace.validate(mv.uri, data=holdout, label="needs_review",
                                task="regression", n_bootstrap=0, explain_sample=0)
    assert report.task == "regression" and "mae" in report.metrics


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"label": "nope"}, "label", "'nope' is not in the data"),
    ({"sensitive_features": ["sex", "religion"]}, "sensitive_features", "'religion'"),
    ({"n_bootstrap": -1}, "n_bootstrap", "non-negative"),
    ({"explain_sample": -5}, "explain_sample", "non-negative"),
    ({"task": "ranking"}, "task", "classification, regression"),
])
def test_bad_arguments_name_the_field(workspace: mw.Workspace, train: pd.DataFrame,
                                      holdout: pd.DataFrame, kwargs: dict[str, Any],
                                      field: str, words: str) -> None:
    mv = register(workspace, train, LogisticRegression(max_iter=500))
    args: dict[str, Any] = {"data": holdout, "label": "needs_review", **kwargs}
    with pytest.raises(mw.InvalidInput) as err:
        workspace.validate(mv.uri, **args)
    assert err.value.field == field
    assert words in str(err.value)
    assert workspace.audit_log(action="model_version.validated") == []


def test_bad_data_names_the_field(workspace: mw.Workspace, train: pd.DataFrame,
                                  holdout: pd.DataFrame) -> None:
    mv = register(workspace, train, LogisticRegression(max_iter=500))
    cases = [
        (holdout.assign(needs_review=1), "label", "one class"),
        (holdout.iloc[:0], "data", "no rows"),
        (holdout.drop(columns=["prior"]), "data", "missing columns: 'prior'"),
        (holdout.assign(amount="high"), "data", "wrong types"),
    ]
    for frame, field, words in cases:
        with pytest.raises(mw.InvalidInput) as err:
            workspace.validate(mv.uri, data=frame, label="needs_review")
        assert err.value.field == field, words
        assert words in str(err.value)
    with pytest.raises(mw.NotFound):
        workspace.validate(mv.uri, data="no-such-file.csv", label="needs_review")
    with pytest.raises(mw.NotFound):
        workspace.validate("claims/9", data=holdout, label="needs_review")
    with pytest.raises(mw.NotFound):
        workspace.get_validation_report("0" * 32)
