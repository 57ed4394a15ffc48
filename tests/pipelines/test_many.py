"""train_many: one trainer over many groups, a registered model per group, failures per group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import modelworks as mw
from modelworks.errors import InvalidInput
from modelworks.pipelines.many import SUMMARY_COLUMNS, group_model_name


def frame(groups: list[Any], rows: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for value in groups:
        x = rng.normal(size=(rows, 2))
        parts.append(pd.DataFrame({"region": [value] * rows, "x1": x[:, 0], "x2": x[:, 1],
                                   "y": (x[:, 0] > 0).astype(int)}))
    return pd.concat(parts, ignore_index=True)


def fit_one(value: Any, df: pd.DataFrame) -> Any:
    return LogisticRegression().fit(df[["x1", "x2"]], df["y"])


def fit_or_fail(value: Any, df: pd.DataFrame) -> Any:
    if value == "raises":
        raise ValueError(f"not enough data for {value}")
    if value == "none":
        return None
    if value == "dict":
        return {"weights": [1, 2]}
    if value == "unfitted":
        return DecisionTreeClassifier()
    return DecisionTreeClassifier(max_depth=2).fit(df[["x1", "x2"]], df["y"])


def test_each_group_becomes_a_registered_model(workspace: mw.Workspace) -> None:
    df = frame(["north", "New York", "7"])
    summary = workspace.train_many(df, group_by="region",
                                   trainer=fit_one, name_prefix="demand", input_example_rows=3)

    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary["group"].tolist() == ["7", "New York", "north"]  # group order
    assert summary["model"].tolist() == ["demand-7", "demand-New_York", "demand-north"]
    assert summary["status"].tolist() == ["registered"] * 3
    assert summary["version"].tolist() == [1, 1, 1]
    assert summary["error"].isna().all() and (summary["seconds"] > 0).all()

    version = workspace.get_model_version("demand-New_York", 1)
    # the signature is the columns the model was fitted on: not the group, not the label
    assert [c["name"] for c in version.signature["inputs"]] == ["x1", "x2"]
    assert len(version.input_example) == 3
    run = workspace.get_run(version.run_id)  # all versions come from one tracked run
    assert run.params["group_by"] == "region" and run.experiment == "demand"
    assert {workspace.get_model_version(m, 1).run_id for m in summary["model"]} == {run.id}
    ny = df[df["region"] == "New York"]
    loaded = workspace.load_model("models:/demand-New_York/1")
    np.testing.assert_array_equal(loaded.predict(ny[["x1", "x2"]]),
                                  fit_one("New York", ny).predict(ny[["x1", "x2"]]))

    again = workspace.train_many(df, group_by="region", trainer=fit_one, name_prefix="demand")
    assert again["version"].tolist() == [2, 2, 2]  # a new version of the same models


def fit_imputed(value: Any, df: pd.DataFrame) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    return make_pipeline(SimpleImputer(), LogisticRegression()).fit(df[["x1", "x2"]], df["y"])


def test_each_signature_says_which_columns_its_group_had_missing(tmp_path: Path) -> None:
    df = frame(["a", "b", "c", "d"])
    df.loc[df.index[df["region"] == "b"][:2], "x2"] = np.nan
    df.loc[df.index[df["region"] == "d"][:1], "x1"] = np.nan
    ws = mw.Workspace(tmp_path / "ws")
    summary = ws.train_many(df, group_by="region", trainer=fit_imputed, name_prefix="m")
    assert summary["status"].tolist() == ["registered"] * 4

    def nullable(group: str) -> dict[str, bool]:
        sig = ws.get_model_version(f"m-{group}", 1).signature
        return {c["name"]: c["nullable"] for c in sig["inputs"]}

    assert nullable("a") == nullable("c") == {"x1": False, "x2": False}
    assert nullable("b") == {"x1": False, "x2": True}
    assert nullable("d") == {"x1": True, "x2": False}


def test_failures_are_reported_per_group_and_the_rest_go_on(tmp_path: Path) -> None:
    ws = mw.Workspace(tmp_path / "ws")
    groups = ["ok-1", "raises", "none", "dict", "unfitted", "ok-2"]
    summary = ws.train_many(frame(groups), group_by="region", trainer=fit_or_fail,
                            name_prefix="m").set_index("group")

    assert summary.loc[["ok-1", "ok-2"], "status"].tolist() == ["registered"] * 2
    failed = summary.drop(index=["ok-1", "ok-2"])
    assert (failed["status"] == "failed").all() and failed["version"].isna().all()
    assert failed.loc["raises", "error"] == "ValueError: not enough data for raises"
    assert "returned None" in failed.loc["none", "error"]
    assert "dict" in failed.loc["dict", "error"]
    assert "NotFittedError" in failed.loc["unfitted", "error"]
    assert sorted(m.name for m in ws.list_models()) == ["m-ok-1", "m-ok-2"]


def test_on_ray_the_summary_is_the_same_as_local(tmp_path: Path, ray_instance: str) -> None:
    df = frame([f"store {i}" for i in range(12)] + ["raises"])
    local = mw.Workspace(tmp_path / "local").train_many(
        df, group_by="region", trainer=fit_or_fail, name_prefix="s")
    ws = mw.Workspace(tmp_path / "ray")
    on_ray = ws.train_many(df, group_by="region", trainer=fit_or_fail, name_prefix="s",
                           executor="ray", workers=2)

    columns = ["group", "model", "version", "status", "error"]
    pd.testing.assert_frame_equal(on_ray[columns], local[columns])
    assert (on_ray["status"] == "registered").sum() == 12
    model = ws.load_model("models:/s-store_3/1").model
    assert isinstance(model, DecisionTreeClassifier) and model.get_depth() <= 2


def test_group_values_become_valid_unique_names(tmp_path: Path) -> None:
    assert group_model_name("d", "Zürich/Nord 1") == "d-Z_rich_Nord_1"
    assert group_model_name("d", "") == "d-_"
    long = group_model_name("d", "x" * 300)
    assert len(long) == 128 and long != group_model_name("d", "x" * 299)

    ws = mw.Workspace(tmp_path / "ws")
    summary = ws.train_many(frame(["a b", "a_b", "a-c"]), group_by="region",
                            trainer=fit_one, name_prefix="d").set_index("group")
    assert summary.loc["a-c", "status"] == "registered"
    for value in ("a b", "a_b"):  # both would be d-a_b: neither silently wins
        assert summary.loc[value, "status"] == "failed"
        assert "'a b', 'a_b' all map to model name 'd-a_b'" in summary.loc[value, "error"]


def test_rows_without_a_group_are_reported(tmp_path: Path) -> None:
    df = frame(["a", "b"])
    df.loc[:4, "region"] = None
    summary = mw.Workspace(tmp_path / "ws").train_many(
        df, group_by="region", trainer=fit_one, name_prefix="d")
    assert summary["status"].tolist() == ["registered", "registered", "failed"]
    assert summary["error"].iloc[2] == "5 rows have no region value"


def test_register_false_trains_without_registering(tmp_path: Path) -> None:
    ws = mw.Workspace(tmp_path / "ws")
    summary = ws.train_many(frame(["a", "raises"]), group_by="region", trainer=fit_or_fail,
                            name_prefix="d", register=False)
    assert summary["status"].tolist() == ["trained", "failed"]
    assert summary["version"].isna().all()
    assert ws.list_models() == []


@pytest.mark.parametrize(("kwargs", "field", "match"), [
    ({"group_by": "city"}, "group_by", "'city' is not a column"),
    ({"df": frame(["a"]).iloc[:0]}, "df", "no rows"),
    ({"df": [1, 2]}, "df", "DataFrame"),
    ({"name_prefix": "bad name"}, "name_prefix", "invalid name_prefix"),
    ({"name_prefix": "-x"}, "name_prefix", "letter or digit"),
    ({"name_prefix": "x" * 101}, "name_prefix", "at most 100"),
    ({"trainer": "fit_one"}, "trainer", "function"),
    ({"input_example_rows": -1}, "input_example_rows", ">= 0"),
    ({"executor": "threads"}, "executor", "local, processes, ray"),
])
def test_bad_input_is_refused_naming_the_field(tmp_path: Path, kwargs: dict[str, Any],
                                               field: str, match: str) -> None:
    ws = mw.Workspace(tmp_path / "ws")
    args: dict[str, Any] = {"df": frame(["a"]), "group_by": "region", "trainer": fit_one,
                            "name_prefix": "d", **kwargs}
    with pytest.raises(InvalidInput, match=match) as info:
        ws.train_many(args.pop("df"), **args)
    assert info.value.field == field
    assert ws.list_models() == []


def test_a_trainer_processes_cannot_import_is_refused(tmp_path: Path) -> None:
    ws = mw.Workspace(tmp_path / "ws")
    with pytest.raises(InvalidInput, match="top-level function") as info:
        ws.train_many(frame(["a"]), group_by="region", name_prefix="d", executor="processes",
                      trainer=lambda value, df: fit_one(value, df))
    assert info.value.field == "trainer"


def test_the_command_line_trains_a_data_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from modelworks.cli.main import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELWORKS_USER", "cli")
    (tmp_path / "p2_cli_trainers.py").write_text(
        "from sklearn.tree import DecisionTreeClassifier\n\n"
        "def fit(value, df):\n"
        "    if value == 'raises':\n"
        "        raise ValueError('too few rows')\n"
        "    return DecisionTreeClassifier(max_depth=2).fit(df[['x1', 'x2']], df['y'])\n")
    frame(["east", "west"]).to_csv(tmp_path / "sales.csv", index=False)
    args = ["--workspace", str(tmp_path / "ws"), "train-many", "sales.csv", "--group-by",
            "region", "--trainer", "p2_cli_trainers:fit", "--name-prefix", "sales"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["groups"] == 2 and report["failed"] == 0
    assert [(r["model"], r["version"], r["status"]) for r in report["summary"]] == [
        ("sales-east", 1, "registered"), ("sales-west", 1, "registered")]

    frame(["east", "raises"]).to_csv(tmp_path / "sales.csv", index=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1  # a failed group is a failed command, after the others
    assert "ValueError: too few rows" in result.stdout
    assert "1 of 2 groups registered, 1 failed" in result.stdout
    assert mw.Workspace(tmp_path / "ws").get_model_version("sales-east", 2).version == 2

    result = CliRunner().invoke(app, [*args[:-4], "--trainer", "p2_cli_trainers:nope",
                                      "--name-prefix", "sales"])
    assert result.exit_code != 0 and "cannot be imported" in result.output
