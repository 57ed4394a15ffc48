"""kill -9 of a real server process under load: every answered prediction is in the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

import modelworks as mw

from .conftest import free_port

pytestmark = pytest.mark.slow


def _start(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MODELWORKS_USER": "server"}
    env.pop("MODELWORKS_WORKSPACE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelworks.cli.main", "-w", str(folder), "serve", "--port",
         str(port), "--models", "bc/1", *extra], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health/ready").status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "exited")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _workspace(tmp_path: Path, cancer: tuple) -> tuple[Path, dict[str, float]]:
    """A workspace folder with 'bc' v1 registered, and one request row."""
    x, y = cancer
    folder = tmp_path / "ws"
    with mw.Workspace(folder, user="alice") as ws:
        ws.register_model("bc", model=LogisticRegression(max_iter=5000).fit(x, y),
                          input_example=x.head())
    return folder, {k: float(v) for k, v in x.iloc[0].items()}


def test_every_answered_prediction_survives_kill_9(tmp_path: Path, cancer) -> None:
    folder, row = _workspace(tmp_path, cancer)
    port = free_port()
    proc = _start(folder, port)
    acked: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            while not stop.is_set():
                try:
                    reply = c.post("/v1/models/bc/predict", json={"instances": [row, row]})
                except httpx.HTTPError:
                    return  # the server died mid-request: that answer was never received
                if reply.status_code == 200:
                    acked.append(reply.json()["request_id"])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 300:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    answered = list(acked)

    # restart: the new process recovers what the dead one left, then shuts down cleanly
    proc = _start(folder, port)
    proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit too
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    journal = folder / "prediction-journal"
    left = [p.name for p in journal.iterdir() if p.suffix in (".open", ".jsonl")]
    assert left == []  # shutdown flushed and compacted the journal

    with mw.Workspace(folder, user="alice") as ws:
        logged = ws.predictions(model="bc")
    ids = logged["prediction_id"].tolist()
    expected = {f"{rid}:{row_}" for rid in answered for row_ in (0, 1)}
    assert expected <= set(ids), f"{len(expected - set(ids))} answered predictions lost"
    assert len(ids) == len(set(ids))  # each once


def test_two_workers_serve_and_log_everything(tmp_path: Path, cancer) -> None:
    folder, row = _workspace(tmp_path, cancer)
    port = free_port()
    proc = _start(folder, port, "--workers", "2")
    ids: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            for _ in range(50):
                reply = c.post("/v1/models/bc/predict", json={"instances": [row]})
                assert reply.status_code == 200
                ids.append(reply.json()["request_id"])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert len(ids) == 200
    with mw.Workspace(folder, user="alice") as ws:
        logged = set(ws.predictions(model="bc")["request_id"])
    assert set(ids) <= logged
