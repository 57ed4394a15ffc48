"""The durable prediction log, over SQLite and PostgreSQL: journal, compaction, recovery after
``kill -9``, reading, the privacy filter, feedback and the prediction trace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select
from typer.testing import CliRunner

import modelworks as mw
from modelworks.config import Settings, resolve_location
from modelworks.context import Context
from modelworks.errors import InvalidInput, NotFound, StoreUnavailable
from modelworks.governance.pseudonyms import verify_token
from modelworks.serving._logfiles import encode_rows, read_parquet
from modelworks.serving.feedback import feedback_for, record_feedback
from modelworks.serving.prediction_log import (
    PredictionLog,
    default_journal_dir,
    get_prediction,
    log_filter,
    read_predictions,
)
from modelworks.serving.records import PredictionRecord
from modelworks.store.database import Database
from modelworks.store.tables import prediction_files

DAY = 86_400.0


def _request_id(ts: float) -> str:
    return f"{int(ts * 1000):012x}{os.urandom(7).hex()}"


def _rows(model: str = "claims", *, n: int = 2, ts: float | None = None, version: int = 1,
          shadow: bool = False, endpoint: str | None = "claims-ep",
          request_id: str | None = None) -> list[dict[str, Any]]:
    at = time.time() if ts is None else ts
    rid = request_id or _request_id(at)
    return [{"prediction_id": f"{rid}:{i}", "request_id": rid, "row": i, "ts": at,
             "endpoint": endpoint, "model": model, "version": version,
             "inputs": {"amount": 10.5 * i, "region": "north"}, "output": i % 2,
             "proba": [0.25, 0.75], "latency_ms": 1.25, "shadow": shadow} for i in range(n)]


def _segments(journal: Path) -> list[str]:
    return sorted(p.name for p in journal.iterdir() if p.suffix in (".open", ".jsonl"))


def test_append_then_read_before_and_after_compaction(workspace: mw.Workspace,
                                                      tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    log = PredictionLog(workspace.ctx, journal, background=False)
    first = _rows(n=3)
    log.append_rows(first)
    record = PredictionRecord(**_rows(n=1, version=2, endpoint=None)[0])
    log.append([record])
    shadow = _rows(n=1, shadow=True, request_id=first[0]["request_id"], version=3)
    log.append_rows(shadow)
    assert log.appended_total == 5 and log.lag_records == 5

    # Visible at once through the journal, not yet in the compacted log.
    fresh = read_predictions(workspace.ctx, journal_dir=journal)
    assert list(fresh["prediction_id"]) == [r["prediction_id"] for r in first] + [
        record.prediction_id]
    assert read_predictions(workspace.ctx).empty
    assert get_prediction(workspace.ctx, record.prediction_id, journal_dir=journal) == record

    log.close()
    assert _segments(journal) == [] and log.lag_records == 0 and log.lag_seconds == 0.0
    frame = read_predictions(workspace.ctx, include_shadow=True)
    assert len(frame) == 5 and frame["prediction_id"].tolist().count(
        first[0]["prediction_id"]) == 2  # the served answer and the shadow's
    served = frame[~frame["shadow"]].reset_index(drop=True)
    assert list(served.columns) == ["prediction_id", "request_id", "row", "ts", "endpoint",
                                    "model", "version", "inputs", "output", "proba",
                                    "latency_ms", "shadow"]
    row = served.iloc[1]
    assert row["inputs"] == {"amount": 10.5, "region": "north"} and row["output"] == 1
    assert row["proba"] == [0.25, 0.75] and row["latency_ms"] == 1.25
    assert abs(row["ts"].timestamp() - first[1]["ts"]) < 2e-6  # kept to the microsecond
    assert str(served["ts"].dtype) == "datetime64[us, UTC]"
    # The served answer wins over the shadow's for the same id.
    got = get_prediction(workspace.ctx, first[0]["prediction_id"])
    assert got.version == 1 and not got.shadow and got.inputs == {"amount": 0.0,
                                                                   "region": "north"}


def test_compaction_writes_parquet_per_model_and_day(workspace: mw.Workspace,
                                                     tmp_path: Path) -> None:
    now = time.time()
    yesterday = now - DAY
    journal = tmp_path / "journal"
    log = PredictionLog(workspace.ctx, journal, background=False, segment_bytes=1500)
    batches = [_rows("claims", ts=now), _rows("claims", ts=yesterday),
               _rows("fraud", ts=now, n=3), _rows("fraud", ts=yesterday, n=1)]
    for batch in batches * 3:  # small segments: several roll-overs
        log.append_rows(batch)
    assert len(_segments(journal)) > 1
    stored = log.compact(rollover=True)
    assert stored == 24 and log.lag_records == 0
    log.close()

    with workspace.db.read() as conn:
        index = conn.execute(select(prediction_files)).all()
    days = {datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d") for t in (now, yesterday)}
    assert {(r.model, r.day) for r in index} == {(m, d) for m in ("claims", "fraud")
                                                 for d in days}
    assert sum(r.rows for r in index) == 24
    for r in index:
        stem, model, day = r.segment.split("/")
        assert (model, day) == (r.model, r.day) and stem.count("-") == 2
        table = read_parquet(workspace.artifacts.get_bytes(r.artifact_sha256))  # verified
        assert table.num_rows == r.rows and set(table.column("model").to_pylist()) == {model}
        assert r.min_ts <= r.max_ts
        assert {datetime.fromtimestamp(ts.timestamp(), UTC).strftime("%Y-%m-%d")
                for ts in table.column("ts").to_pylist()} == {day}

    assert len(read_predictions(workspace.ctx, model="fraud")) == 12
    today = datetime.fromtimestamp(now, UTC) - timedelta(seconds=1)
    recent = read_predictions(workspace.ctx, since=today)
    assert len(recent) == 15 and (recent["ts"] >= pd.Timestamp(today)).all()
    older = read_predictions(workspace.ctx, model="claims", until=today)
    assert len(older) == 6
    newest = read_predictions(workspace.ctx, limit=4)
    assert len(newest) == 4 and newest["ts"].min() >= recent["ts"].min()
    # A prediction of yesterday is found from its id's time alone.
    old_id = batches[3][0]["prediction_id"]
    assert get_prediction(workspace.ctx, old_id).model == "fraud"


def test_recovery_after_a_crash_is_idempotent(workspace: mw.Workspace, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    # A dead writer's segment: complete lines, one unreadable (a machine crash can leave
    # garbage), then a write cut short.
    orphan = _rows(n=3) + _rows(n=2)
    (journal / "0000000000000001-999999-deadbeef.open").write_bytes(
        encode_rows(orphan[:3]) + b'{"prediction_id": "x:0", "version": "one"}\n\x00\x00\n'
        + encode_rows(orphan[3:]) + b'{"prediction_id": "01234')
    # A segment compacted before the crash, whose deletion never happened.
    compacted = _rows(n=2)
    with PredictionLog(workspace.ctx, tmp_path / "other", background=False) as log:
        log.append_rows(compacted)
    with workspace.db.read() as conn:
        [key] = conn.execute(select(prediction_files.c.segment)).scalars().all()
    (journal / f"{key.split('/')[0]}.jsonl").write_bytes(encode_rows(compacted))

    recovered = PredictionLog(workspace.ctx, journal, background=False)
    assert recovered.lag_records == 9  # lines counted on disk before compaction
    # Until compacted, the journal already answers, with the torn line dropped.
    ids = read_predictions(workspace.ctx, journal_dir=journal)["prediction_id"].tolist()
    assert sorted(ids) == sorted(r["prediction_id"] for r in orphan + compacted)
    assert recovered.compact() == 5  # the already indexed segment is not stored again
    recovered.close()
    assert _segments(journal) == []
    frame = read_predictions(workspace.ctx, journal_dir=journal)
    assert frame["prediction_id"].is_unique
    assert sorted(frame["prediction_id"]) == sorted(r["prediction_id"]
                                                    for r in orphan + compacted)
    with workspace.db.read() as conn:
        assert len(conn.execute(select(prediction_files)).all()) == 2


def test_a_live_writers_segment_is_left_alone(workspace: mw.Workspace, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    writer = PredictionLog(workspace.ctx, journal, background=False)
    writer.append_rows(_rows())
    other = PredictionLog(workspace.ctx, journal, background=False)  # e.g. a second worker
    assert other.compact() == 0  # the writer's open segment is locked: not an orphan
    writer.append_rows(_rows())  # still appending to it
    other.close()
    writer.close()
    assert len(read_predictions(workspace.ctx)) == 4


def test_concurrent_appends_keep_every_line_whole(workspace: mw.Workspace,
                                                  tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    log = PredictionLog(workspace.ctx, journal, fsync_seconds=0.01, compact_seconds=0.05,
                        segment_bytes=20_000)
    sent: list[list[str]] = [[] for _ in range(6)]

    def worker(k: int) -> None:
        for _ in range(150):
            rows = _rows(n=1 + k % 3)
            log.append_rows(rows)
            sent[k].extend(r["prediction_id"] for r in rows)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    ids = read_predictions(workspace.ctx)["prediction_id"]
    assert ids.is_unique and sorted(ids) == sorted(i for part in sent for i in part)


_WRITER = r"""
import sys, time
import modelworks as mw
from modelworks.serving.ids import new_request_id
from modelworks.serving.prediction_log import PredictionLog

location, artifacts, journal = sys.argv[1:4]
ws = mw.Workspace(location, artifacts=artifacts, user="server")
log = PredictionLog(ws.ctx, journal, fsync_seconds=0.05, compact_seconds=0.1,
                    segment_bytes=8192)
i = 0
while True:
    rid = new_request_id()
    rows = [{"prediction_id": f"{rid}:{r}", "request_id": rid, "row": r, "ts": time.time(),
             "endpoint": "claims", "model": "claims" if i % 2 else "fraud", "version": 1,
             "inputs": {"i": i}, "output": r, "proba": None, "latency_ms": 0.1,
             "shadow": False} for r in range(1 + i % 3)]
    log.append_rows(rows)
    sys.stdout.write("".join(row["prediction_id"] + "\n" for row in rows))
    sys.stdout.flush()  # acknowledged: written to the journal before this line
    i += 1
"""


def _kill_9_then_recover(ws: mw.Workspace, location: str, artifacts: str,
                         tmp_path: Path) -> None:
    """A writer appends in a loop and prints each id once append_rows returned; kill -9."""
    journal = tmp_path / "journal"
    errors = tmp_path / "writer.err"
    with errors.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, location, artifacts,
                                 str(journal)], stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    acked: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while len(acked) < 400:
            line = proc.stdout.readline()
            assert line, f"the writer exited: {errors.read_text()[-2000:]}"
            acked.append(line.decode().strip())
            assert time.monotonic() < deadline, "the writer is too slow"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rest = proc.stdout.read().decode()
    proc.stdout.close()
    acked.extend(line for line in rest.split("\n")[:-1] if line)  # a cut last line: not acked

    assert len(acked) >= 400
    PredictionLog(ws.ctx, journal, background=False).close()  # recovery, as on a restart
    frame = read_predictions(ws.ctx)
    assert frame["prediction_id"].is_unique
    assert set(acked) <= set(frame["prediction_id"])
    assert _segments(journal) == []


def test_kill_9_loses_no_acknowledged_prediction(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    with mw.Workspace(folder, user="alice") as ws:
        _kill_9_then_recover(ws, str(folder), str(folder / "artifacts"), tmp_path)


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_prediction_on_postgres(pg_schema_url: str,
                                                             tmp_path: Path) -> None:
    artifacts = str(tmp_path / "artifacts")
    with mw.Workspace(pg_schema_url, artifacts=artifacts, user="alice") as ws:
        _kill_9_then_recover(ws, pg_schema_url, artifacts, tmp_path)


def _model_trained_on_personal_data(ws: mw.Workspace) -> int:
    df = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                       "email": [f"p{i}@example.com" for i in range(6)],
                       "y": [0, 1, 0, 1, 0, 1]})
    dv = ws.log_dataset(df, name="claims-train")
    ws.tag_columns("claims-train", ["email"], "sensitive")
    with ws.start_run("claims", name="lr") as run:
        run.use_dataset(dv, role="train")
        mv = ws.register_model("claims-triage", model=LogisticRegression().fit(
            df[["amount"]], df["y"]), run=run, input_example=df[["amount"]].head(2))
    return mv.version


def test_sensitive_columns_are_dropped_or_tokenised(workspace: mw.Workspace) -> None:
    version = _model_trained_on_personal_data(workspace)
    row = {"amount": 3.0, "email": "Ann@Example.com"}

    drop = log_filter(workspace.ctx, "claims-triage", version, settings=Settings())
    assert drop.mode == "drop" and drop.columns == {"email": ["tag:sensitive"]}
    assert drop(row) == {"amount": 3.0} and row["email"] == "Ann@Example.com"
    assert drop({"amount": 1.0}) == {"amount": 1.0}

    keyed = Settings(pseudonym_key="k1:" + "ab" * 32)
    tokenise = log_filter(workspace.ctx, "claims-triage", version, settings=keyed)
    out = tokenise(row)
    assert out["amount"] == 3.0 and out["email"].startswith("pt1.k1.prediction-log.")
    assert verify_token(out["email"], "ann@example.com", "prediction-log", keyed)
    assert tokenise({"amount": 1.0, "email": None})["email"] is None

    plain = workspace.register_model("plain", model=LogisticRegression().fit(
        pd.DataFrame({"amount": [1.0, 2.0]}), [0, 1]))
    keep = log_filter(workspace.ctx, "plain", plain.version, settings=keyed)
    assert keep.columns == {} and keep(row) is row
    with pytest.raises(NotFound, match="claims-triage"):
        log_filter(workspace.ctx, "claims-triage", 99)
    with pytest.raises(InvalidInput) as bad:
        log_filter(workspace.ctx, "claims-triage", version,
                   settings=Settings(pseudonym_key="k1:short"))
    assert bad.value.field == "MODELWORKS_PSEUDONYM_KEY"


def test_feedback_is_validated_stored_and_joined(workspace: mw.Workspace,
                                                 tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    with PredictionLog(workspace.ctx, journal, background=False) as log:
        rows = _rows(n=3)
        log.append_rows(rows)
    ids = [r["prediction_id"] for r in rows]

    bad_items: list[tuple[Any, str]] = [
        ([], "feedback"),
        ({"prediction_id": ids[0], "label": 1}, "feedback"),
        ([{"prediction_id": ids[0], "label": 1}, {"prediction_id": "nope", "label": 0}],
         "feedback[1].prediction_id"),
        ([{"prediction_id": 7, "label": 0}], "feedback[0].prediction_id"),
        ([{"prediction_id": ids[0]}], "feedback[0].label"),
        ([{"prediction_id": ids[0], "label": None}], "feedback[0].label"),
        ([{"prediction_id": ids[0], "label": float("nan")}], "feedback[0].label"),
        ([{"prediction_id": ids[0], "label": 1, "lable": 1}], "feedback[0].lable"),
        (["x"], "feedback[0]"),
    ]
    for items, field in bad_items:
        with pytest.raises(InvalidInput) as exc:
            record_feedback(workspace.ctx, items)
        assert exc.value.field == field and field in str(exc.value)
    assert feedback_for(workspace.ctx, ids) == {}  # nothing of a refused batch was stored

    assert record_feedback(workspace.ctx, [{"prediction_id": ids[0], "label": 0},
                                           {"prediction_id": ids[1], "label": "fraud"}]) == 2
    assert workspace.record_feedback([{"prediction_id": ids[0], "label": 1}]) == 1  # corrected
    assert feedback_for(workspace.ctx, ids) == {ids[0]: 1, ids[1]: "fraud"}
    events = workspace.audit_log(action="prediction.feedback")
    assert [e.payload["count"] for e in events] == [1, 2]

    frame = read_predictions(workspace.ctx, with_feedback=True)
    assert frame["label"].tolist() == [1, "fraud", None]
    many = [r["prediction_id"] for r in _rows(n=600)]  # the range-scan path
    assert feedback_for(workspace.ctx, [*many, ids[1]]) == {ids[1]: "fraud"}


def test_bad_arguments_name_the_field(workspace: mw.Workspace) -> None:
    with pytest.raises(InvalidInput) as exc:
        read_predictions(workspace.ctx, since="yesterday")
    assert exc.value.field == "since"
    with pytest.raises(InvalidInput) as exc:
        read_predictions(workspace.ctx, limit=0)
    assert exc.value.field == "limit"
    with pytest.raises(InvalidInput) as exc:
        get_prediction(workspace.ctx, "not-an-id")
    assert exc.value.field == "prediction_id"
    missing = f"{_request_id(time.time())}:0"
    with pytest.raises(NotFound, match=missing):
        get_prediction(workspace.ctx, missing)
    with pytest.raises(InvalidInput) as exc:
        PredictionLog(workspace.ctx, "unused", fsync_seconds=-1)
    assert exc.value.field == "fsync_seconds"


def test_journal_folder_defaults(tmp_path: Path) -> None:
    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        assert ws.prediction_journal_dir == (tmp_path / "ws" / "prediction-journal").resolve()
    custom = Settings(prediction_log_dir=str(tmp_path / "j"))
    with mw.Workspace(tmp_path / "ws", user="alice", settings=custom) as ws:
        assert ws.prediction_journal_dir == (tmp_path / "j").resolve()
    team = resolve_location("postgresql://db/x", artifacts=str(tmp_path),
                                      settings=Settings())
    with pytest.raises(InvalidInput) as exc:
        default_journal_dir(team, Settings())
    assert exc.value.field == "prediction_log_dir" and "MODELWORKS_PREDICTION_LOG_DIR" in str(
        exc.value)
    assert default_journal_dir(team, Settings(), required=False) is None


def test_trace_and_cli_from_a_prediction_to_the_training_data(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from modelworks.cli.main import app

    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_PREDICTION_LOG_DIR"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "ws"
    with mw.Workspace(folder, user="alice") as ws:
        version = _model_trained_on_personal_data(ws)
        assert ws.prediction_journal_dir is not None
        log = PredictionLog(ws.ctx, ws.prediction_journal_dir, background=False)
        rows = _rows("claims-triage", n=2, version=version)
        log.append_rows(rows)
        pid = rows[1]["prediction_id"]
        assert ws.predictions("claims-triage")["prediction_id"].tolist() == [
            r["prediction_id"] for r in rows]  # from the journal, before compaction
        log.close()
        ws.record_feedback([{"prediction_id": pid, "label": 1}])
        trace = ws.trace_prediction(pid)
        text = trace.render_tree()
        assert text.splitlines()[0].startswith(f"prediction:{pid}")
        assert f"[predicted_by] model_version:claims-triage/{version}" in text
        assert "[trained_by] run:" in text and "[used:train] dataset_version:" in text
        assert trace.prediction.prediction_id == pid and trace.label == 1
        assert ws.predictions(with_feedback=True)["label"].tolist() == [None, 1]

    runner = CliRunner()
    base = ["--workspace", str(folder)]
    shown = runner.invoke(app, [*base, "predictions", "show", pid])
    assert shown.exit_code == 0, shown.output
    assert pid in shown.output and "models:/claims-triage/1" in shown.output
    assert "amount" in shown.output
    as_json = runner.invoke(app, [*base, "predictions", "show", pid, "--json"])
    assert as_json.exit_code == 0 and '"label": 1' in as_json.output
    listed = runner.invoke(app, [*base, "predictions", "list", "--model", "claims-triage",
                                 "--since", "1h", "--limit", "1", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [p["prediction_id"] for p in json.loads(listed.output)["predictions"]] == [pid]
    traced = runner.invoke(app, [*base, "trace", f"prediction:{pid}"])
    assert traced.exit_code == 0 and traced.output.startswith(f"prediction:{pid}")
    bad = runner.invoke(app, [*base, "predictions", "list", "--since", "last week"])
    assert bad.exit_code == 1 and "--since" in bad.output
    missing = runner.invoke(app, [*base, "predictions", "show", "nope"])
    assert missing.exit_code == 1 and "not a prediction id" in missing.output


def test_a_store_outage_keeps_the_journal_until_the_next_start(workspace: mw.Workspace,
                                                                tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    down = Context(db=Database("postgresql+psycopg://mw@127.0.0.1:1/none"),
                   artifacts=workspace.artifacts, actor="server")
    log = PredictionLog(down, journal, background=False)
    rows = _rows(n=2)
    log.append_rows(rows)
    with pytest.raises(StoreUnavailable):
        log.compact(rollover=True)
    log.close()  # logs the failure; the segment stays
    assert len(_segments(journal)) == 1
    assert len(read_predictions(workspace.ctx, journal_dir=journal)) == 2
    PredictionLog(workspace.ctx, journal, background=False).close()
    assert _segments(journal) == []
    assert read_predictions(workspace.ctx)["prediction_id"].tolist() == [
        r["prediction_id"] for r in rows]


def test_compaction_in_a_child_process(workspace: mw.Workspace, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    log = PredictionLog(workspace.ctx, journal, compact_seconds=0.3, fsync_seconds=0.1,
                        compact_in_process=True)
    try:
        rows = _rows(n=4)
        log.append_rows(rows)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # rolled over here, compacted by the child
            with workspace.db.read() as conn:
                if conn.execute(select(prediction_files.c.id)).first() is not None:
                    break
            time.sleep(0.1)
        with workspace.db.read() as conn:
            assert conn.execute(select(prediction_files.c.rows)).scalars().all() == [4]
    finally:
        log.close()
    assert _segments(journal) == []
    ids = read_predictions(workspace.ctx, journal_dir=journal)["prediction_id"].tolist()
    assert sorted(ids) == sorted(r["prediction_id"] for r in rows)
