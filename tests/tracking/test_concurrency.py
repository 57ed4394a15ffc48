"""Eight processes log metrics into one workspace at once: nothing lost, nothing locked."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import func, select

import modelworks as mw
from modelworks.store.tables import metrics

PROCESSES = 8
POINTS = 5000


def _worker(location: str, artifacts: str, index: int) -> str:
    ws = mw.Workspace(location, artifacts=artifacts, user=f"worker{index}")
    with ws.start_run(experiment="load", name=f"w{index}", params={"index": index}) as run:
        for step in range(POINTS // 2):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_batch(metrics=[("acc", step / POINTS, step) for step in range(POINTS // 2)])
        run.set_tag("done", "yes")
    ws.close()
    return run.id


@pytest.mark.slow
def test_eight_processes_log_concurrently(db_location: tuple[str, str]) -> None:
    location, artifacts = db_location
    mw.Workspace(location, artifacts=artifacts, user="admin").close()
    ctx = mp.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        run_ids = pool.starmap(_worker, [(location, artifacts, i) for i in range(PROCESSES)])
    ws = mw.Workspace(location, artifacts=artifacts, user="admin")
    with ws.db.read() as conn:
        total = conn.execute(select(func.count()).select_from(metrics)).scalar_one()
    assert total == PROCESSES * POINTS
    for run_id in run_ids:
        rec = ws.get_run(run_id)
        assert rec.status == "FINISHED" and rec.metric_count == POINTS
        assert len(ws.metric_history(run_id, "loss")) == POINTS // 2
    report = ws.verify_audit()
    assert report.ok, report.problem
    assert len(ws.audit_log(action="run.ended", limit=None)) == PROCESSES
    ws.close()
