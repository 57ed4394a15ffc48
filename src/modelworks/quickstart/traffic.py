"""Real traffic for the quickstart: a uvicorn server on a local port and claims sent to it.

Each phase of the demo starts its own server (a second or less), so what it serves is what
the endpoint says at that moment, exactly as a freshly deployed replica would see it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from rich.progress import Progress

from ..workspace import Workspace
from .claims_data import FEATURE_COLUMNS, LABEL_COLUMN

__all__ = ["Sent", "send_claims", "serving"]

BATCH = 10  # claims per request: a claims system sends what arrived since its last call


@dataclass(frozen=True)
class Sent:
    """What one phase sent: prediction ids with their true labels, and the versions hit."""

    ids: list[str]
    labels: list[int]
    versions: dict[int, int]  # version -> rows answered by it
    labelled: int  # rows whose ground truth was sent back


@contextlib.contextmanager
def serving(ws: Workspace) -> Iterator[str]:
    """A real server on 127.0.0.1 for the block; yields its base URL."""
    import uvicorn

    from ..serving.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(ws), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def send_claims(base_url: str, endpoint: str, claims: pd.DataFrame, progress: Progress, *,
                title: str, feedback_every: int = 1) -> Sent:
    """POST ``claims`` to the endpoint in batches, then send the true label of every
    ``feedback_every``-th claim to ``/v1/feedback`` (ground truth arrives later, and not for
    every claim)."""
    import httpx

    features = claims[list(FEATURE_COLUMNS)].astype(object)
    features = features.where(features.notna(), None)
    labels = claims[LABEL_COLUMN].astype(int).tolist()
    ids: list[str] = []
    versions: dict[int, int] = {}
    task = progress.add_task(title, total=len(claims), status="")
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for start in range(0, len(features), BATCH):
            batch = features.iloc[start:start + BATCH].to_dict(orient="records")
            reply = client.post(f"/v1/endpoints/{endpoint}/predict",
                                json={"instances": batch})
            reply.raise_for_status()
            body = reply.json()
            version = int(body["version"])
            versions[version] = versions.get(version, 0) + len(batch)
            ids.extend(f"{body['request_id']}:{i}" for i in range(len(batch)))
            progress.update(task, advance=len(batch),
                            status=", ".join(f"v{v}: {n}" for v, n in sorted(versions.items())))
        chosen = list(range(0, len(ids), max(1, feedback_every)))
        for start in range(0, len(chosen), 500):
            client.post("/v1/feedback", json={"feedback": [
                {"prediction_id": ids[i], "label": labels[i]}
                for i in chosen[start:start + 500]]}).raise_for_status()
    return Sent(ids=ids, labels=labels, versions=versions, labelled=len(chosen))
