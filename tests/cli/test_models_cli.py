"""``modelworks models ...`` driven in-process against a real SQLite workspace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

import modelworks as mw
from modelworks.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """Two versions of 'churn-lr' (v1 at staging), and a second model 'fraud-lr'."""
    ws_folder = tmp_path / "ws"
    x = pd.DataFrame({"age": [25.0, 40.0, 55.0, 33.0, 61.0, 47.0],
                      "income": [30.0, 52.0, 80.0, 41.0, 95.0, 60.0]})
    y = [0, 0, 1, 0, 1, 1]
    with mw.Workspace(ws_folder, user="alice") as ws:
        with ws.start_run("churn", name="lr") as run:
            model = LogisticRegression().fit(x, y)
            ws.register_model("churn-lr", model=model, run=run, input_example=x.head(2),
                              risk_tier="high", tags={"team": "retention"})
        ws.register_model("churn-lr", model=LogisticRegression(C=0.5).fit(x, y),
                          input_example=x.head(2))
        ws.register_model("fraud-lr", model=model, input_example=x.head(2),
                          tags={"team": "fraud"})
        ws.set_alias("churn-lr", "staging", 1, reason="first candidate")
    yield ws_folder


def cli(folder: Path, *args: str) -> Result:
    return runner.invoke(app, ["--workspace", str(folder), "--user", "alice", *args])


def run_json(folder: Path, *args: str) -> Any:
    result = cli(folder, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_list_json_and_filters(folder: Path) -> None:
    every = run_json(folder, "models", "list")
    assert [(m["name"], m["latest_version"]) for m in every] == [("churn-lr", 2),
                                                                ("fraud-lr", 1)]
    assert every[0]["risk_tier"] == "high" and every[0]["aliases"] == {"staging": 1}
    assert [m["name"] for m in run_json(folder, "models", "list", "--prefix", "fra")] == [
        "fraud-lr"]
    assert [m["name"] for m in run_json(folder, "models", "list", "--tag", "team=retention")
            ] == ["churn-lr"]
    assert len(run_json(folder, "models", "list", "--limit", "1")) == 1


def test_list_table(folder: Path) -> None:
    result = cli(folder, "models", "list")
    assert result.exit_code == 0, result.stderr
    assert "churn-lr" in result.stdout and "high" in result.stdout
    assert "staging→1" in result.stdout and "alice" in result.stdout


def test_show_bare_name(folder: Path) -> None:
    shown = run_json(folder, "models", "show", "churn-lr")
    assert shown["model"]["name"] == "churn-lr"
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    result = cli(folder, "models", "show", "churn-lr")
    assert result.exit_code == 0, result.stderr
    assert "versions (2)" in result.stdout and "retention" in result.stdout


@pytest.mark.parametrize("ref", ["churn-lr/1", "churn-lr@staging", "models:/churn-lr/1",
                                 "models:/churn-lr@staging"])
def test_show_version(folder: Path, ref: str) -> None:
    version = run_json(folder, "models", "show", ref)
    assert version["version"] == 1 and version["aliases"] == ["staging"]
    assert version["run_id"] and len(version["sha256"]) == 64
    result = cli(folder, "models", "show", ref)
    assert result.exit_code == 0, result.stderr
    for text in (version["sha256"], version["format"], version["run_id"], "staging",
                 "registered", "alice", "age", "income"):
        assert text in result.stdout


def test_versions(folder: Path) -> None:
    found = run_json(folder, "models", "versions", "churn-lr")
    assert [(v["version"], v["aliases"]) for v in found] == [(1, ["staging"]), (2, [])]
    result = cli(folder, "models", "versions", "churn-lr")
    assert result.exit_code == 0 and "staging" in result.stdout


def test_alias_set_history_delete(folder: Path) -> None:
    moved = cli(folder, "models", "alias", "set", "churn-lr", "staging", "2",
                "--reason", "better auc")
    assert moved.exit_code == 0, moved.stderr
    assert run_json(folder, "models", "show", "churn-lr@staging")["version"] == 2
    deleted = cli(folder, "models", "alias", "delete", "churn-lr", "staging",
                  "--reason", "retired")
    assert deleted.exit_code == 0, deleted.stderr
    history = run_json(folder, "models", "alias", "history", "churn-lr", "staging")
    assert [(m["previous_version"], m["version"], m["reason"]) for m in history] == [
        (None, 1, "first candidate"), (1, 2, "better auc"), (2, None, "retired")]
    table = cli(folder, "models", "alias", "history", "churn-lr", "staging")
    assert table.exit_code == 0 and "better auc" in table.stdout
    assert "(deleted)" in table.stdout


def test_alias_set_needs_reason(folder: Path) -> None:
    result = cli(folder, "models", "alias", "set", "churn-lr", "staging", "2")
    assert result.exit_code == 2


def test_protected_alias_goes_through_the_gate_or_force(folder: Path) -> None:
    refused = cli(folder, "models", "alias", "set", "churn-lr", "production", "1",
                  "--reason", "ship it")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: ") and "no policy applies" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.output
    forced = cli(folder, "models", "alias", "set", "churn-lr", "production", "1",
                 "--reason", "ship it", "--force")
    assert forced.exit_code == 0, forced.stderr
    history = run_json(folder, "models", "alias", "history", "churn-lr", "production")
    assert [(m["version"], m["forced"], m["actor"]) for m in history] == [(1, True, "alice")]
    not_admin = runner.invoke(app, ["-w", str(folder), "--user", "bob", "models", "alias",
                                    "delete", "churn-lr", "production", "--reason", "x",
                                    "--force"])
    assert not_admin.exit_code == 1 and "admin" in not_admin.stderr


def test_archive(folder: Path) -> None:
    result = cli(folder, "models", "archive", "churn-lr/2", "--reason", "superseded")
    assert result.exit_code == 0, result.stderr
    assert run_json(folder, "models", "show", "churn-lr/2")["status"] == "archived"
    held = cli(folder, "models", "archive", "churn-lr/1")
    assert held.exit_code == 1 and "staging" in held.stderr
    by_alias = cli(folder, "models", "archive", "churn-lr@staging")
    assert by_alias.exit_code == 1 and "explicit version" in by_alias.stderr


@pytest.mark.parametrize("args", [["show", "nope"], ["show", "nope/1"], ["versions", "nope"],
                                  ["alias", "history", "nope", "staging"]])
def test_unknown_model(folder: Path, args: list[str]) -> None:
    result = cli(folder, "models", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "no registered model" in result.stderr


def test_bad_reference_is_one_line_error(folder: Path) -> None:
    result = cli(folder, "models", "show", "churn-lr/abc")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


def test_trace_tree_json_and_dot(folder: Path) -> None:
    tree = cli(folder, "trace", "churn-lr/1")
    assert tree.exit_code == 0, tree.output
    assert tree.output.startswith("model_version:churn-lr/1")
    graph = run_json(folder, "trace", "models:/churn-lr/1", "--json")
    assert graph["graph"]["root"] == {"type": "model_version", "id": "churn-lr/1"}
    dot = cli(folder, "trace", "churn-lr/1", "--format", "dot")
    assert dot.exit_code == 0 and dot.output.startswith("digraph lineage {")
    missing = cli(folder, "trace", "churn-lr@nope")
    assert missing.exit_code == 1
