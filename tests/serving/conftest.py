"""A real uvicorn server on a free port, in a thread, over a real workspace."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import modelworks as mw
from modelworks.config import Settings
from modelworks.serving.app import create_app


@dataclass
class Running:
    url: str
    client: httpx.Client
    app: Any
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(app: Any) -> Running:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    return Running(url=url, client=httpx.Client(base_url=url, timeout=30), app=app,
                   server=server, thread=thread)


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, y


@pytest.fixture
def serving_ws(db_location: tuple[str, str], tmp_path: Path,
               cancer: tuple[pd.DataFrame, pd.Series]) -> Iterator[mw.Workspace]:
    """'bc' v1 (staging) and v2 on the breast-cancer data; quick alias refresh."""
    location, artifacts = db_location
    settings = Settings(serve_alias_refresh_seconds=0.2,
                        prediction_log_dir=str(tmp_path / "journal"),
                        prediction_log_fsync_seconds=0, serve_max_body_bytes=200_000)
    ws = mw.Workspace(location, artifacts=artifacts, user="alice", settings=settings)
    x, y = cancer
    ws.register_model("bc", model=LogisticRegression(max_iter=5000).fit(x, y),
                      input_example=x.head())
    ws.register_model("bc", model=LogisticRegression(C=0.01, max_iter=5000).fit(x, y),
                      input_example=x.head())
    ws.set_alias("bc", "staging", 1, reason="first")
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture
def serve(serving_ws: mw.Workspace) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def _start(**kwargs: Any) -> Running:
        r = start(create_app(serving_ws, **kwargs))
        running.append(r)
        return r

    yield _start
    for r in running:
        r.stop()
