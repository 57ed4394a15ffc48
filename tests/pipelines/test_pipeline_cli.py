"""``modelworks pipeline run | runs | show``, driven through the Typer app on real SQLite
workspaces, with the pipeline in a module of the current folder (as a user has it)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelworks as mw
from modelworks.cli.main import app
from modelworks.cli.pipeline_cmds import parse_params
from modelworks.errors import InvalidInput

runner = CliRunner()
MODULE = "mw_cli_flows"
FLOWS = '''
import pandas as pd
import modelworks as mw

@mw.step
def make(n: int, label: str = "x") -> pd.DataFrame:
    return pd.DataFrame({"i": range(n), "label": [label] * n})

@mw.step
def total(df: pd.DataFrame) -> int:
    return int(df["i"].sum())

@mw.step
def broken(df: pd.DataFrame) -> int:
    raise ValueError("cannot count today")

@mw.pipeline
def summing(n: int, label: str = "x"):
    return total(make(n, label))

@mw.pipeline
def failing(n: int = 2):
    return broken(make(n))
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding the user's pipeline module, as the current directory."""
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / f"{MODULE}.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI adds the folder: undo it
    yield tmp_path
    sys.modules.pop(MODULE, None)


def _cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--workspace", "ws", "--user", "alice", *args])
    return result.exit_code, result.stdout, result.stderr


def test_params_are_json_when_they_parse_else_text() -> None:
    assert parse_params(["n=3", "rate=0.5", "on=true", "xs=[1,2]", "path=claims.parquet",
                         "empty=", "eq=a=b"]) == {
        "n": 3, "rate": 0.5, "on": True, "xs": [1, 2], "path": "claims.parquet", "empty": "",
        "eq": "a=b"}
    with pytest.raises(InvalidInput, match="NAME=VALUE"):
        parse_params(["n"])
    with pytest.raises(InvalidInput, match="given twice"):
        parse_params(["n=1", "n=2"])


def test_run_then_rerun_from_cache_then_list_and_show(project: Path) -> None:
    code, out, err = _cli("pipeline", "run", f"{MODULE}:summing", "--param", "n=4",
                          "-p", "label=claims")
    assert code == 0, err
    assert "✓ make" in err and "✓ total" in err  # progress per step, on stderr
    assert "FINISHED" in out and "summing" in out

    code, out, err = _cli("pipeline", "run", f"{MODULE}:summing", "-p", "n=4", "-p",
                          "label=claims", "--json")
    assert code == 0, err
    cached = json.loads(out)
    assert cached["status"] == "FINISHED" and cached["params"] == {"n": 4, "label": "claims"}
    assert cached["cached_steps"] == ["make", "total"]

    code, out, _ = _cli("pipeline", "run", f"{MODULE}:summing", "-p", "n=4", "-p",
                        "label=claims", "--no-cache", "--json")
    assert json.loads(out)["cached_steps"] == []

    code, out, _ = _cli("pipeline", "runs", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) == 3
    assert [r["id"] for r in listed][1] == cached["id"]  # newest first
    code, out, _ = _cli("pipeline", "runs", "--pipeline", "summing")
    assert code == 0 and cached["id"] in out

    code, out, _ = _cli("pipeline", "show", cached["id"], "--json")
    assert code == 0 and json.loads(out)["id"] == cached["id"]
    code, out, _ = _cli("pipeline", "show", cached["id"])
    assert code == 0 and "make" in out and "CACHED" in out
    with mw.Workspace(project / "ws") as ws:
        assert ws.get_pipeline_run(cached["id"]).output() == 6


def test_a_failed_step_prints_the_run_and_exits_non_zero(project: Path) -> None:
    code, out, err = _cli("pipeline", "run", f"{MODULE}:failing", "--json")
    assert code == 1
    assert json.loads(out)["status"] == "FAILED"
    assert "error: pipeline 'failing'" in err and "ValueError: cannot count today" in err


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "m=1"], "pipeline 'summing' has no parameter 'm'"),
    ([], "pipeline 'summing' needs parameter n"),
    (["-p", "n=1", "--executor", "threads"], "unknown executor 'threads'"),
])
def test_bad_input_is_one_error_line(project: Path, args: list[str], message: str) -> None:
    code, out, err = _cli("pipeline", "run", f"{MODULE}:summing", *args)
    assert code == 1 and out == ""
    assert err.strip() == f"error: {message}" or message in err
    assert "Traceback" not in err


def test_a_target_that_is_not_a_pipeline(project: Path) -> None:
    code, _, err = _cli("pipeline", "run", f"{MODULE}:nothing")
    assert code == 1 and "has no 'nothing'" in err
    code, _, err = _cli("pipeline", "run", f"{MODULE}:total")
    assert code == 1 and "is a step, not a pipeline" in err
    code, _, err = _cli("pipeline", "show", "nope")
    assert code == 1 and "no pipeline run with id 'nope'" in err


def test_schedule_a_pipeline_and_the_worker_runs_it(project: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from modelworks.monitoring.worker import Worker
    from modelworks.store.tables import schedules, utcnow

    code, out, err = _cli("pipeline", "schedule", f"{MODULE}:summing", "--cron", "0 3 * * *",
                          "-p", "n=5", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert (made["kind"], made["target"], made["cron"]) == (
        "pipeline", f"{MODULE}:summing", "0 3 * * *")
    assert made["options"]["params"] == {"n": 5}
    code, _, err = _cli("pipeline", "schedule", "no_such_module:flow", "--cron", "0 3 * * *")
    assert code != 0 and "pipeline" in err
    with mw.Workspace("ws", user="alice") as ws:
        assert ws.schedules()[0].next_run_at.hour == 3
        with ws.db.write() as conn:  # the slot came: due now
            conn.execute(update(schedules).values(next_run_at=utcnow() - timedelta(minutes=1)))
        worker = Worker(ws)
        (ran,) = worker.run_once().schedules
        worker.stop()
        assert ran.status == "ok", ran.error
        run = ws.get_pipeline_run(ran.detail["pipeline_run"])
        assert run.status == "FINISHED" and run.output() == 10
        assert run.created_by == "modelworks-worker"
