"""Streaming the prediction log in chunks (``iter_prediction_frames``): the rows
``read_predictions`` returns, with inputs decoded into columns, from a real server's log and
from hand-written files, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert

import modelworks as mw
from modelworks.serving._logfiles import decode_json_objects, table_from_rows
from modelworks.serving.feedback import record_feedback
from modelworks.serving.prediction_log import PredictionLog, read_predictions
from modelworks.serving.prediction_reader import _row_groups, iter_prediction_frames
from modelworks.store.tables import prediction_files

from .conftest import Running

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _stream(ws: mw.Workspace, **kwargs: Any) -> pd.DataFrame:
    frames = list(iter_prediction_frames(ws.ctx, model=kwargs.pop("model", "bc"), **kwargs))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def test_a_served_log_streams_as_read_predictions_returns_it(
        serving_ws: mw.Workspace, serve: Callable[..., Running],
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    x, _ = cancer
    srv = serve(models=["bc/1", "bc/2"])
    sent = 0
    for start in range(0, 90, 30):
        rows = [{k: float(v) for k, v in x.iloc[i].items()} for i in range(start, start + 30)]
        reply = srv.client.post("/v1/models/bc/versions/1/predict", json={"instances": rows})
        assert reply.status_code == 200, reply.text
        sent += len(rows)
    other = srv.client.post("/v1/models/bc/versions/2/predict",
                            json={"instances": [{k: float(v) for k, v in x.iloc[0].items()}]})
    rid = other.json()["request_id"]
    journal = serving_ws.prediction_journal_dir

    def check(chunk_rows: int) -> pd.DataFrame:
        frames = list(iter_prediction_frames(serving_ws.ctx, model="bc", version=1,
                                             journal_dir=journal, chunk_rows=chunk_rows,
                                             with_feedback=True))
        assert frames and all(len(f) <= chunk_rows for f in frames)
        streamed = pd.concat(frames, ignore_index=True).set_index("prediction_id")
        logged = read_predictions(serving_ws.ctx, model="bc", journal_dir=journal,
                                  with_feedback=True)
        logged = logged[logged["version"] == 1].set_index("prediction_id")
        assert len(streamed) == len(logged) == sent
        streamed = streamed.loc[logged.index]
        assert list(streamed.columns[:len(x.columns)]) == list(x.columns)
        for i, (pid, row) in enumerate(logged.iterrows()):
            assert streamed.loc[pid, "prediction"] == row["output"]
            assert list(streamed.loc[pid, "proba"]) == pytest.approx(row["proba"])
            assert streamed.loc[pid, "label"] == row["label"]
            assert streamed.loc[pid, "ts"] == row["ts"]
            if i < 5:
                assert streamed.loc[pid, x.columns].tolist() == pytest.approx(
                    [row["inputs"][c] for c in x.columns])
        return streamed

    live = check(chunk_rows=7)  # still in the journal: the server is running
    assert set(live["version"]) == {1}
    first = live.index[0]
    record_feedback(serving_ws.ctx, [{"prediction_id": first, "label": 1}])
    srv.stop()  # closing the log compacts it to Parquet
    assert not list(journal.glob("*.jsonl")) and not list(journal.glob("*.open"))
    compacted = check(chunk_rows=25)
    assert compacted.loc[first, "label"] == 1
    assert compacted["label"].isna().sum() == sent - 1
    v2 = _stream(serving_ws, version=2, journal_dir=journal)
    assert list(v2["prediction_id"]) == [f"{rid}:0"]


def _rows(n: int, *, ts: float, version: int = 1, shadow: bool = False,
          inputs: Callable[[int], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        at = ts + i
        rid = f"{int(at * 1000):012x}{os.urandom(7).hex()}"
        out.append({"prediction_id": f"{rid}:0", "request_id": rid, "row": 0, "ts": at,
                    "endpoint": None, "model": "claims", "version": version,
                    "inputs": inputs(i) if inputs else {"amount": 1.5 * i, "kind": "ab"[i % 2]},
                    "output": i % 2, "proba": None, "latency_ms": 1.0, "shadow": shadow})
    return out


def test_window_version_shadow_and_journal(workspace: mw.Workspace, tmp_path: Any) -> None:
    journal = tmp_path / "journal"
    log = PredictionLog(workspace.ctx, journal, background=False)
    t0 = time.time() - 10_000
    log.append_rows(_rows(40, ts=t0))
    log.append_rows(_rows(5, ts=t0 + 5, version=2))
    log.append_rows(_rows(5, ts=t0 + 5, shadow=True))
    log.compact(rollover=True)
    log.append_rows(_rows(10, ts=t0 + 100))  # stays in the journal
    log.flush()
    since, until = t0 + 9.5, t0 + 104.5
    as_dt = [dt.datetime.fromtimestamp(t, dt.UTC) for t in (since, until)]
    streamed = _stream(workspace, model="claims", version=1, since=as_dt[0], until=as_dt[1],
                       journal_dir=journal, chunk_rows=8)
    logged = read_predictions(workspace.ctx, model="claims", since=as_dt[0], until=as_dt[1],
                              journal_dir=journal)
    logged = logged[logged["version"] == 1]
    assert sorted(streamed["prediction_id"]) == sorted(logged["prediction_id"])
    assert len(streamed) == 30 + 5  # [t0+10, t0+40) compacted, [t0+100, t0+105) live
    assert streamed["amount"].dtype == np.float64 and set(streamed["kind"]) == {"a", "b"}
    with_shadow = _stream(workspace, model="claims", version=1, journal_dir=journal,
                          include_shadow=True)
    assert len(with_shadow) == 40 + 5 + 10
    assert _stream(workspace, model="nobody", journal_dir=journal).empty
    log.close()
    with pytest.raises(mw.InvalidInput) as info:
        next(iter_prediction_frames(workspace.ctx, model="claims", chunk_rows=0))
    assert info.value.field == "chunk_rows"


def test_columns_types_absent_keys_and_values_of_another_type(workspace: mw.Workspace,
                                                              tmp_path: Any) -> None:
    journal = tmp_path / "journal"
    log = PredictionLog(workspace.ctx, journal, background=False)

    def inputs(i: int) -> dict[str, Any]:
        row: dict[str, Any] = {"amount": "oops" if i == 3 else i, "kind": "ab"[i % 2],
                               "note": None}
        if i >= 10:
            row["late"] = i  # a key only later rows have
        return row

    log.append_rows(_rows(20, ts=time.time() - 1_000, inputs=inputs))
    log.close()
    types = {"amount": "number", "kind": "string", "note": "number", "late": "number",
             "never": "number"}
    frames = list(iter_prediction_frames(workspace.ctx, model="claims", columns=types,
                                         chunk_rows=5))
    assert [len(f) for f in frames] == [5, 5, 5, 5]
    # text where a number was asked for: that chunk is decoded as sent, so a caller sees it
    assert frames[0]["amount"].tolist()[3] == "oops"
    assert frames[1]["amount"].dtype == np.float64
    # a key no row of a chunk has is no column; a JSON null is a missing value
    assert all("never" not in f.columns for f in frames)
    assert "late" not in frames[0].columns and "late" in frames[2].columns
    assert frames[1]["note"].isna().all()
    # untyped: every input, types inferred
    untyped = list(iter_prediction_frames(workspace.ctx, model="claims", chunk_rows=100))
    assert {"amount", "kind", "note", "late", "prediction", "proba", "prediction_id", "ts",
            "version"} <= set(untyped[0].columns)


def test_row_groups_outside_the_window_are_skipped(workspace: mw.Workspace) -> None:
    t0 = time.time() - 50_000
    table = table_from_rows(_rows(300, ts=t0))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=50)  # six row groups
    ref = workspace.artifacts.put_bytes(sink.getvalue().to_pybytes())
    micros = table.column("ts").cast("int64")
    with workspace.db.write() as conn:
        conn.execute(insert(prediction_files), [{
            "model": "claims", "day": dt.datetime.fromtimestamp(t0, dt.UTC).strftime("%Y-%m-%d"),
            "artifact_sha256": ref.sha256, "rows": 300,
            "min_ts": EPOCH + dt.timedelta(microseconds=micros[0].as_py()),
            "max_ts": EPOCH + dt.timedelta(microseconds=micros[-1].as_py()),
            "segment": "handmade/claims/day", "created_at": dt.datetime.now(dt.UTC)}])
    parquet = pq.ParquetFile(pa.BufferReader(workspace.artifacts.get_bytes(ref.sha256)))
    assert _row_groups(parquet, t0 + 59.5, t0 + 139.5) == [1, 2]
    assert _row_groups(parquet, None, None) == list(range(6))
    for lo, hi in ((t0 + 59.5, t0 + 139.5), (t0 + 48.5, t0 + 50.5), (t0 - 0.5, t0 + 299.5),
                   (t0 + 298.5, None)):
        since = dt.datetime.fromtimestamp(lo, dt.UTC)
        until = None if hi is None else dt.datetime.fromtimestamp(hi, dt.UTC)
        streamed = _stream(workspace, model="claims", since=since, until=until, chunk_rows=30)
        logged = read_predictions(workspace.ctx, model="claims", since=since, until=until)
        assert list(streamed["prediction_id"]) == list(logged["prediction_id"])
        assert len(streamed) == sum(1 for i in range(300)
                                    if lo <= t0 + i and (hi is None or t0 + i < hi))


def test_decode_json_objects() -> None:
    texts = pa.array(['{"a":1,"b":"x"}', None, '{"a":2.5,"c":true}'])
    typed = decode_json_objects(texts, pa.schema([("a", pa.float64())]), infer_others=False)
    assert typed.column_names == ["a"] and typed.column("a").to_pylist() == [1.0, None, 2.5]
    inferred = decode_json_objects(texts)
    assert inferred.column("b").to_pylist() == ["x", None, None]
    assert inferred.column("c").to_pylist() == [None, None, True]
    assert decode_json_objects(pa.array([], pa.string())).num_rows == 0
    with pytest.raises(pa.ArrowInvalid):
        decode_json_objects(pa.array(['{"a":"text"}']), pa.schema([("a", pa.float64())]))
