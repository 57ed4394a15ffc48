"""`modelworks worker` as a real process (heartbeat, SIGTERM), and the worker CLI commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from typer.testing import CliRunner

import modelworks as mw
from modelworks.cli.main import app
from modelworks.monitoring.worker import WorkerInfo
from modelworks.quickstart.claims_data import LABEL_COLUMN, generate_claims

from . import _trainers
from ._governed import LOW_RISK, TRAINER

T = TypeVar("T")


def _wait_for(check: Callable[[], T | None], what: str, proc: subprocess.Popen[str],
              timeout: float = 90.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.returncode}) before {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_process_heartbeats_and_stops_on_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    mw.Workspace(folder, user="alice").close()
    env = {**os.environ, "MODELWORKS_WORKER_IDENTITY": "robot", "MODELWORKS_USER": "alice"}
    env.pop("MODELWORKS_WORKSPACE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelworks.cli.main", "-w", str(folder), "worker",
         "--poll", "0.2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with mw.Workspace(folder, user="alice") as ws:
            def beating() -> WorkerInfo | None:
                rows = [w for w in ws.workers() if w.pid == proc.pid]
                return rows[0] if rows and rows[0].heartbeat_at > rows[0].started_at \
                    else None

            seen = _wait_for(beating, "a heartbeat", proc)
            assert seen.identity == "robot" and seen.status == "running"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
            (row,) = [w for w in ws.workers() if w.pid == proc.pid]
            assert row.status == "stopped" and row.heartbeat_at >= seen.heartbeat_at
            events = {e.action: e for e in ws.audit_log(entity_type="worker", limit=None)}
            assert set(events) == {"worker.started", "worker.stopped"}
            assert {e.actor for e in events.values()} == {"robot"}
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "started as 'robot'" in stderr and "SIGTERM" in stderr and "stopped" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_worker_retrain_and_schedule_commands(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    data = generate_claims(600, seed=1)
    with mw.Workspace(folder, user="alice") as ws:
        with ws.start_run(experiment="claims") as run:
            run.use_dataset(ws.log_dataset(data, name="claims-train"), role="train")
            ws.register_model("claims", model=_trainers.fit(data), run=run,
                              input_example=data[_trainers.FEATURES], risk_tier="low")
        ws.apply_policy(LOW_RISK)
        ws.set_training("claims", entrypoint=TRAINER, data="dataset:claims-train",
                        label=LABEL_COLUMN)
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, ["-w", str(folder), "--user", "alice", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    made = json.loads(cli("monitor", "schedule", "claims/1", "--every", "1h", "--json"))
    assert (made["name"], made["options"]["window"]) == ("monitor:claims/1", "1h")
    assert "every 30m over the last 2h" in cli("monitor", "schedule", "claims/1", "--every",
                                               "30m", "--window", "2h")
    listed = json.loads(cli("schedules", "list", "--json"))
    assert [s["every"] for s in listed] == ["30m"]

    done = json.loads(cli("retrain", "claims/1", "--json"))
    assert done["status"] == "ready" and done["candidate"] == "models:/claims/2"
    assert done["actor"] == "alice" and "no endpoint" in done["message"]
    assert [r["id"] for r in json.loads(cli("retrain-runs", "--json"))] == [done["id"]]
    assert "ready" in cli("retrain-runs")

    # One tick: the due schedule finds no predictions; the worker acts as its identity.
    tick = runner.invoke(app, ["-w", str(folder), "worker", "--once", "--json"])
    assert tick.exit_code == 0, tick.output
    report = json.loads(tick.stdout)
    assert report["identity"] == "modelworks-worker"
    assert [s["status"] for s in report["schedules"]] == ["no_data"]
    cli("schedules", "remove", "monitor:claims/1")
    assert json.loads(cli("schedules", "list", "--json")) == []

    bad = runner.invoke(app, ["-w", str(folder), "retrain", "nope/1"])
    assert bad.exit_code == 1 and "error:" in bad.stderr
    bad = runner.invoke(app, ["-w", str(folder), "worker", "--once", "--poll", "0"])
    assert bad.exit_code == 1 and "--poll" in bad.stderr
