"""Segments: drift, quality and performance per value of a column, over given data and over
the prediction log, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelworks as mw
from modelworks.config import Settings
from modelworks.monitoring.drift.detectors import DriftDetector
from modelworks.monitoring.drift.profile import profile_reference
from modelworks.monitoring.quality import conform
from modelworks.monitoring.segments import MISSING, OTHER, SegmentTracker, segment_labels
from modelworks.monitoring.window import WindowStats
from modelworks.serving.prediction_log import PredictionLog

FEATURES = ["amount", "prior", "age"]


def _frame(n: int, *, seed: int, north_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south"], n)
    amount = rng.normal(100, 20, n) + np.where(region == "north", north_shift, 0.0)
    df = pd.DataFrame({"amount": amount, "prior": rng.integers(0, 5, n).astype(float),
                       "age": rng.normal(45, 10, n), "region": region})
    df["y"] = ((df["amount"] + 10 * df["prior"] + rng.normal(0, 10, n)) > 120).astype(int)
    return df


@pytest.fixture
def seg_ws(db_location: tuple[str, str], tmp_path: Path) -> Iterator[mw.Workspace]:
    location, artifacts = db_location
    ws = mw.Workspace(location, artifacts=artifacts, user="alice",
                      settings=Settings(prediction_log_dir=str(tmp_path / "journal")))
    train = _frame(3_000, seed=0)
    with ws.start_run(experiment="segments") as run:
        run.use_dataset(ws.log_dataset(train, name="train"), role="train")
        ws.register_model("claims", model=LogisticRegression(max_iter=2000).fit(
            train[FEATURES], train["y"]), run=run, input_example=train[FEATURES].head())
    yield ws
    ws.close()


def test_segments_of_given_data_show_the_group_that_moved(seg_ws: mw.Workspace) -> None:
    current = _frame(2_000, seed=1, north_shift=45)
    result = seg_ws.monitor("claims/1", segments=["region"]).run(data=current, label="y")
    by_value = {s.value: s for s in result.segments}
    assert set(by_value) == {"north", "south"}
    north, south = by_value["north"], by_value["south"]
    assert north.rows + south.rows == 2_000 == result.rows
    assert north.rows == int((current["region"] == "north").sum())
    assert "amount" in north.drifted_columns and "amount" not in south.drifted_columns
    assert north.drift.share > south.drift.share
    # positive rate: share predicted as classes_[1] (1); error rate: labelled rows wrong
    model = seg_ws.load_model("claims/1")
    for value, seg in by_value.items():
        rows = current[current["region"] == value]
        predicted = model.predict(rows[FEATURES])
        assert seg.positive_rate == pytest.approx(float((predicted == 1).mean()))
        assert seg.error_rate == pytest.approx(float((predicted != rows["y"]).mean()))
        assert seg.labelled_rows == len(rows)
        assert seg.performance is not None and seg.performance.labelled_rows == len(rows)
    assert north.positive_rate is not None and south.positive_rate is not None
    assert north.positive_rate > south.positive_rate + 0.2  # the gap a fairness review sees
    metrics = result.metrics()
    assert metrics["segment.region=north.positive_rate"] == north.positive_rate
    assert metrics["segment.region=north.drift.share"] == north.drift.share
    assert metrics["segment.region=south.error_rate"] == south.error_rate
    assert metrics["segment.region=north.rows"] == north.rows
    assert "segment.region=north.drift.column.amount.psi" in metrics
    assert "segment.region=north.quality.error_rate" in metrics
    assert "segment.region=north.performance.accuracy" in metrics
    stored = seg_ws.monitor_runs("claims/1", limit=1)[0]
    assert [(s.value, s.rows) for s in stored.segments] == [(s.value, s.rows)
                                                             for s in result.segments]


def test_top_values_then_other_and_missing(seg_ws: mw.Workspace) -> None:
    current = _frame(1_200, seed=2)
    current["prior_band"] = current["prior"]  # 0..4 as floats: labels without ".0"
    current.loc[:99, "prior_band"] = np.nan
    result = seg_ws.monitor("claims/1", segments=["prior_band", "prior"],
                            segment_top=2).run(data=current)
    band = [s for s in result.segments if s.column == "prior_band"]
    counts = current["prior_band"].value_counts()
    top = sorted(((v, int(c)) for v, c in counts.items()), key=lambda vc: (-vc[1], vc[0]))[:2]
    assert [(s.value, s.rows) for s in band[:2]] == [(str(int(v)), c) for v, c in top]
    assert band[-1].value == OTHER
    assert sum(s.rows for s in band) == 1_200
    assert MISSING not in {s.value for s in band[:2]}  # 100 missing: a small group
    # a segment by a model input leaves that input out of the segment's drift
    prior = [s for s in result.segments if s.column == "prior"]
    assert all("prior" not in [c.column for c in s.drift.columns] for s in prior)
    assert all("amount" in [c.column for c in s.drift.columns] for s in prior)


def _log(ws: mw.Workspace, frame: pd.DataFrame, *, ts: float) -> None:
    """Journal rows as a server would, with ``region`` logged though the model ignores it."""
    model = ws.load_model("claims/1")
    predicted, proba = model.predict(frame[FEATURES]), model.predict_proba(frame[FEATURES])
    rows = []
    for i, rec in enumerate(frame.drop(columns=["y"]).to_dict(orient="records")):
        at = ts + i / 1000
        rid = f"{int(at * 1000):012x}{os.urandom(7).hex()}"
        rows.append({"prediction_id": f"{rid}:0", "request_id": rid, "row": 0, "ts": at,
                     "endpoint": None, "model": "claims", "version": 1, "inputs": rec,
                     "output": int(predicted[i]), "proba": proba[i].tolist(),
                     "latency_ms": 1.0, "shadow": False})
    log = PredictionLog(ws.ctx, ws.prediction_journal_dir, background=False)
    log.append_rows(rows)
    log.close()  # compacted


def test_segments_over_the_prediction_log(seg_ws: mw.Workspace) -> None:
    current = _frame(1_000, seed=3, north_shift=45)
    _log(seg_ws, current, ts=time.time() - 120)
    logged = seg_ws.monitor("claims/1", segments=["region"], chunk_rows=64).run(window="1h")
    given = seg_ws.monitor("claims/1", segments=["region"]).run(data=current)
    assert [(s.value, s.rows) for s in logged.segments] == [(s.value, s.rows)
                                                            for s in given.segments]
    for a, b in zip(logged.segments, given.segments, strict=True):
        assert a.positive_rate == pytest.approx(b.positive_rate)
        assert a.drift.share == b.drift.share and a.drifted_columns == b.drifted_columns
        assert a.quality == b.quality
    with pytest.raises(mw.InvalidInput) as info:
        seg_ws.monitor("claims/1", segments=["branch"]).run(window="1h")
    assert info.value.field == "segments" and "branch" in str(info.value)


def test_overflow_values_go_to_other_and_merge_exactly() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"v": rng.normal(size=2_000), "c": rng.choice(list("abc"), 2_000)})
    profile = profile_reference(reference)
    detector = DriftDetector().fit(profile)
    current = pd.DataFrame({"v": rng.normal(size=600), "c": rng.choice(list("abc"), 600),
                            "g": rng.choice(list("pqrstu"), 600)})

    def make() -> WindowStats:
        return WindowStats(profile, keep_values=False)

    capped = SegmentTracker("g", make, top=2, tracked=3)
    exact = SegmentTracker("g", make, top=2)
    for start in range(0, 600, 100):
        chunk = conform(profile, current.iloc[start:start + 100].reset_index(drop=True))
        capped.add(chunk)
        exact.add(chunk)
    a = capped.results(detector, missing_jump=0.05, required=["v", "c"])
    b = exact.results(detector, missing_jump=0.05, required=["v", "c"])
    assert [s.value for s in b][-1] == OTHER and sum(s.rows for s in b) == 600
    assert sum(s.rows for s in a) == 600 and a[-1].value == OTHER
    # the exact tracker's (other) is the merge of four values' sums: its counts add up
    other = b[-1]
    assert other.rows == int((~current["g"].isin([s.value for s in b[:2]])).sum())
    assert other.quality.rows == other.rows and other.drift.current_rows == other.rows


def test_segment_labels() -> None:
    labels = segment_labels(pd.Series([1.0, 2.5, None, 3.0]))
    assert list(labels) == ["1", "2.5", MISSING, "3"]
    assert list(segment_labels(pd.Series(["a", None, "b"]))) == ["a", MISSING, "b"]
    assert list(segment_labels(pd.Series([True, False]))) == ["True", "False"]
    assert list(segment_labels(pd.Series([1, "x", 2.0, None], dtype=object))) == [
        "1", "x", "2", MISSING]
