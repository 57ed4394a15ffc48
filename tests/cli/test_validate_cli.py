"""``modelworks validate`` driven in-process against a real SQLite workspace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import modelworks as mw
from modelworks.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.normal(100, 25, n), "prior": rng.integers(0, 5, n),
                       "sex": rng.choice(["f", "m"], n), "region": rng.choice(["n", "s"], n)})
    df["churn"] = ((df["amount"] + 10 * df["prior"] + rng.normal(0, 15, n)) > 120).astype(int)
    return df


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "ws"
    train = _frame(300, 1)
    with mw.Workspace(folder, user="alice") as ws, ws.start_run("churn") as run:
        run.use_dataset(ws.log_dataset(train, name="churn-train"), role="train")
        x = train[["amount", "prior"]]
        ws.register_model("churn-lr", model=LogisticRegression().fit(x, train["churn"]),
                          run=run, input_example=x.head())
        ws.set_alias("churn-lr", "staging", 1, reason="candidate")
    data = tmp_path / "holdout.csv"
    _frame(400, 2).to_csv(data, index=False)
    return folder, data


def test_validate_prints_metrics_and_writes_the_page(setup: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    folder, data = setup
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["--workspace", str(folder), "--user", "bob", "validate",
                                 "churn-lr@staging", "--data", str(data), "--label", "churn",
                                 "--sensitive", "sex,region", "--bootstrap", "50",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "roc_auc" in result.stdout and "accuracy" in result.stdout
    assert "models:/churn-lr/1" in result.stdout
    assert "demographic parity difference" in result.stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    with mw.Workspace(folder, user="alice") as ws:
        [report] = ws.validation_reports("churn-lr/1")
        assert report.created_by == "bob"
        assert sorted(report.fairness) == ["region", "sex"]
        assert ws.get_validation_report(report.id).html() == page


def test_validate_json_is_the_record(setup: tuple[Path, Path]) -> None:
    folder, data = setup
    result = runner.invoke(app, ["--workspace", str(folder), "validate", "churn-lr/1",
                                 "--data", str(data), "--label", "churn", "--bootstrap", "0",
                                 "--explain-sample", "0", "--json"])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["model"] == "churn-lr" and body["version"] == 1
    assert body["task"] == "classification" and body["held_out"] is True
    assert body["metrics"]["accuracy"]["low"] is None  # no resamples asked for


@pytest.mark.parametrize(("args", "words"), [
    (["--label", "nope"], "label column 'nope' is not in the data"),
    (["--label", "churn", "--sensitive", "religion"], "sensitive feature(s) 'religion'"),
])
def test_bad_input_is_one_error_line(setup: tuple[Path, Path], args: list[str],
                                     words: str) -> None:
    folder, data = setup
    result = runner.invoke(app, ["--workspace", str(folder), "validate", "churn-lr/1",
                                 "--data", str(data), *args])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and words in result.stderr
    assert "Traceback" not in result.stderr
