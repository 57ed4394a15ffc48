"""The ``modelworks`` command line, driven for real against SQLite workspaces.

Most tests run the Typer app in-process through ``CliRunner``; a few run the real console
entry point in a subprocess, to check exit codes and streams as a shell sees them.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import modelworks as mw
from modelworks.cli.main import app
from modelworks.store.database import Database

runner = CliRunner()


@dataclass(frozen=True)
class Populated:
    folder: Path
    good_run: str
    weak_run: str
    dataset_hash: str


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def populated(tmp_path: Path) -> Iterator[Populated]:
    """A workspace with a logged dataset and two finished runs in experiment 'churn'."""
    folder = tmp_path / "ws"
    frame = pd.DataFrame({"age": [31.0, 45.0, None, 52.0], "plan": ["a", "b", "a", "a"]})
    with mw.Workspace(folder, user="alice") as ws:
        dv = ws.log_dataset(frame, name="customers")
        with ws.start_run("churn", name="forest", params={"model": "rf", "depth": 6}) as run:
            run.log_metrics({"auc": 0.91, "loss": 0.25})
            run.set_tag("team", "[bold]risk")
            run.use_dataset(dv)
            good = run.id
        with ws.start_run("churn", name="linear", params={"model": "lr"}) as run:
            run.log_metric("auc", 0.72)
            weak = run.id
    yield Populated(folder=folder, good_run=good, weak_run=weak, dataset_hash=dv.content_hash)


def cli(folder: Path, *args: str) -> Result:
    return runner.invoke(app, ["--workspace", str(folder), *args])


def run_json(folder: Path, *args: str) -> Any:
    result = cli(folder, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_experiments_list_json(populated: Populated) -> None:
    found = run_json(populated.folder, "experiments", "list")
    assert [(e["name"], e["run_count"]) for e in found] == [("churn", 2)]


def test_runs_list_json_and_filter(populated: Populated) -> None:
    every = run_json(populated.folder, "runs", "list", "--experiment", "churn")
    assert {r["id"] for r in every} == {populated.good_run, populated.weak_run}
    good = run_json(populated.folder, "runs", "list", "--filter", "metrics.auc > 0.8")
    assert [r["id"] for r in good] == [populated.good_run]
    assert good[0]["metrics"] == {"auc": 0.91, "loss": 0.25}
    assert good[0]["params"] == {"model": "rf", "depth": "6"}


def test_runs_list_order_and_limit(populated: Populated) -> None:
    found = run_json(populated.folder, "runs", "list", "--order-by", "metrics.auc ASC",
                     "--limit", "1")
    assert [r["id"] for r in found] == [populated.weak_run]


def test_runs_list_table_shows_full_ids_and_metrics(populated: Populated) -> None:
    result = cli(populated.folder, "runs", "list")
    assert result.exit_code == 0, result.stderr
    assert populated.good_run in result.stdout and populated.weak_run in result.stdout
    assert "auc" in result.stdout and "0.91" in result.stdout and "FINISHED" in result.stdout


def test_runs_list_metric_columns(populated: Populated) -> None:
    result = cli(populated.folder, "runs", "list", "--metric", "loss")
    assert result.exit_code == 0, result.stderr
    assert "0.25" in result.stdout and "0.91" not in result.stdout


def test_json_is_not_wrapped_on_a_narrow_terminal(populated: Populated) -> None:
    result = runner.invoke(app, ["-w", str(populated.folder), "runs", "show",
                                 populated.good_run, "--json"], env={"COLUMNS": "20"})
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["packages_hash"]) == 64


def test_bad_filter_is_one_line_error_with_position(populated: Populated) -> None:
    result = cli(populated.folder, "runs", "list", "--filter", "metrics.auc >> 0.8")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "position" in lines[0]


def test_runs_show(populated: Populated) -> None:
    record = run_json(populated.folder, "runs", "show", populated.good_run)
    assert record["id"] == populated.good_run and record["status"] == "FINISHED"
    assert record["tags"] == {"team": "[bold]risk"}
    assert record["datasets"][0]["content_hash"] == populated.dataset_hash
    text = cli(populated.folder, "runs", "show", populated.good_run)
    assert text.exit_code == 0, text.stderr
    for expected in ("forest", "depth", "0.91", "customers", "[bold]risk", "python"):
        assert expected in text.stdout  # user text is printed verbatim, not as markup


def test_runs_show_unknown_run(populated: Populated) -> None:
    result = cli(populated.folder, "runs", "show", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["error: no run with id 'nope'"]
    assert "Traceback" not in result.output


def test_failed_run_shows_its_error(populated: Populated) -> None:
    with mw.Workspace(populated.folder, user="alice") as ws:
        run = ws.start_run("churn", name="boom")
        with pytest.raises(RuntimeError), run:
            raise RuntimeError("disk full")
    result = cli(populated.folder, "runs", "show", run.id)
    assert result.exit_code == 0, result.stderr
    assert "FAILED" in result.stdout and "RuntimeError: disk full" in result.stdout


def test_datasets_list_and_show(populated: Populated) -> None:
    found = run_json(populated.folder, "datasets", "list")
    assert [(d["name"], d["latest_version"]) for d in found] == [("customers", 1)]
    version = run_json(populated.folder, "datasets", "show", "customers:1")
    assert version["content_hash"] == populated.dataset_hash and version["row_count"] == 4
    assert version["columns"] == {"age": "float64", "plan": version["columns"]["plan"]}
    text = cli(populated.folder, "datasets", "show", "customers")
    assert text.exit_code == 0, text.stderr
    for expected in (populated.dataset_hash, "age", "1 (25%)", "52", "a (3)"):
        assert expected in text.stdout


def test_datasets_show_bad_ref(populated: Populated) -> None:
    missing = cli(populated.folder, "datasets", "show", "customers:7")
    assert missing.exit_code == 1 and "has no version 7" in missing.stderr
    malformed = cli(populated.folder, "datasets", "show", "customers:x")
    assert malformed.exit_code == 1 and malformed.stderr.startswith("error: ")


def test_audit_log_filters(populated: Populated) -> None:
    events = run_json(populated.folder, "audit", "log", "--entity-type", "run", "--limit", "3")
    assert len(events) == 3 and all(e["entity_type"] == "run" for e in events)
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    created = run_json(populated.folder, "audit", "log", "--action", "workspace.created")
    assert [(e["seq"], e["actor"]) for e in created] == [(1, "alice")]


def test_audit_verify_detects_tampering(populated: Populated) -> None:
    intact = cli(populated.folder, "audit", "verify")
    assert intact.exit_code == 0, intact.stderr
    assert "audit chain intact:" in intact.stdout
    with sqlite3.connect(populated.folder / "modelworks.db") as conn:
        conn.execute("UPDATE mw_audit_events SET actor='mallory' WHERE seq=2")
    broken = cli(populated.folder, "audit", "verify")
    assert broken.exit_code == 1
    assert "seq 2" in broken.stdout
    report = json.loads(cli(populated.folder, "audit", "verify", "--json").stdout)
    assert report["ok"] is False and report["first_broken_seq"] == 2


def test_init_reports_location_and_admin(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-w", str(tmp_path / "new"), "--user", "carol", "init", "--json"])
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["admins"] == ["carol"] and info["user"] == "carol"
    assert info["database"].endswith("modelworks.db")
    assert info["artifacts"] == str((tmp_path / "new" / "artifacts").resolve())


def test_workspace_option_overrides_environment(populated: Populated, tmp_path: Path) -> None:
    other = tmp_path / "other"
    via_env = runner.invoke(app, ["experiments", "list", "--json"],
                            env={"MODELWORKS_WORKSPACE": str(populated.folder)})
    assert [e["name"] for e in json.loads(via_env.stdout)] == ["churn"]
    via_option = runner.invoke(app, ["-w", str(other), "experiments", "list", "--json"],
                               env={"MODELWORKS_WORKSPACE": str(populated.folder)})
    assert via_option.exit_code == 0 and json.loads(via_option.stdout) == []


def test_db_upgrade_on_fresh_folder_reports_head(tmp_path: Path) -> None:
    head = Database.head_revision()
    result = runner.invoke(app, ["-w", str(tmp_path / "fresh"), "db", "upgrade", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "database": f"sqlite:///{(tmp_path / 'fresh' / 'modelworks.db').resolve()}",
        "before": None, "after": head, "head": head,
    }
    again = runner.invoke(app, ["-w", str(tmp_path / "fresh"), "db", "upgrade"])
    assert again.exit_code == 0 and f"already at head revision {head}" in again.stdout


@pytest.mark.postgres
def test_db_upgrade_creates_postgres_schema(pg_schema_url: str) -> None:
    result = runner.invoke(app, ["-w", pg_schema_url, "db", "upgrade", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["before"] is None and report["after"] == Database.head_revision()


@pytest.mark.parametrize("args", [["--bogus"], ["runs", "list", "--nope"], ["runs", "show"],
                                  ["runs", "list", "--limit", "many"]])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), *args])
    assert result.exit_code == 2
    assert "Error" in result.stderr and result.stdout == ""


def test_help(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "db", "experiments", "runs", "datasets", "audit", "quickstart"):
        assert command in result.stdout
    quickstart = runner.invoke(app, ["quickstart", "--help"])
    assert quickstart.exit_code == 0 and "--dir" in quickstart.stdout


# -- the real entry point, as a shell runs it ------------------------------------------------


def _subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelworks.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_subprocess_runs_list_json(populated: Populated) -> None:
    proc = _subprocess("-w", str(populated.folder), "runs", "list", "--filter",
                       "params.model = 'rf'", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in json.loads(proc.stdout)] == [populated.good_run]


def test_subprocess_errors_and_exit_codes(populated: Populated) -> None:
    missing = _subprocess("-w", str(populated.folder), "runs", "show", "nope")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.splitlines() == ["error: no run with id 'nope'"]
    usage = _subprocess("-w", str(populated.folder), "runs", "list", "--bogus")
    assert usage.returncode == 2 and "No such option" in usage.stderr
    verify = _subprocess("-w", str(populated.folder), "audit", "verify")
    assert verify.returncode == 0 and "audit chain intact" in verify.stdout
