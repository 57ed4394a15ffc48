"""Steps and pipelines the pipeline tests run (top level: every executor can reach them).

``CALLS`` counts executions in this process (the local executor), so a test can tell a
cached step from one that ran; ``flaky`` fails until a marker file says otherwise.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import modelworks as mw
from modelworks.pipelines import log_metric

CALLS: Counter[str] = Counter()


@mw.step
def load(rows: int, seed: int = 0) -> pd.DataFrame:
    CALLS["load"] += 1
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                         "region": rng.choice(["north", "south"], size=rows)})


@mw.step
def features(df: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    CALLS["features"] += 1
    out = df.copy()
    out["ab"] = (out["a"] + out["b"]) * scale
    out["label"] = (out["ab"] > 0).astype(int)
    return out


@mw.step
def matrix(df: pd.DataFrame) -> np.ndarray:
    CALLS["matrix"] += 1
    return df[["a", "b"]].to_numpy()


@mw.step
def stats(df: pd.DataFrame) -> dict[str, Any]:
    CALLS["stats"] += 1
    return {"rows": len(df), "positive": int(df["label"].sum()),
            "regions": sorted(df["region"].unique().tolist())}


@mw.step(retries=1, backoff=0.0)
def train(df: pd.DataFrame, C: float = 1.0) -> LogisticRegression:
    CALLS["train"] += 1
    log_metric("train_rows", len(df))
    return LogisticRegression(C=C).fit(df[["a", "b"]].to_numpy(), df["label"])


@mw.step
def score(model: LogisticRegression, X: np.ndarray) -> float:
    CALLS["score"] += 1
    return float(model.predict_proba(X)[:, 1].mean())


@mw.pipeline
def training(rows: int = 200, C: float = 1.0, seed: int = 0) -> Any:
    df = features(load(rows, seed=seed))
    model = train(df, C=C)
    return {"model": model, "stats": stats(df), "score": score(model, matrix(df))}


@mw.step
def square(i: int) -> int:
    CALLS["square"] += 1
    return i * i


@mw.step
def add_all(*values: int) -> int:
    return sum(values)


@mw.pipeline
def fan_out(n: int = 8) -> Any:
    """``n`` independent steps, then one that reads them all."""
    return add_all(*[square(i) for i in range(n)])


@mw.step(retries=2, backoff=0.0)
def flaky(marker: str) -> str:
    """Fails (and leaves the marker) on its first attempt, succeeds on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise ConnectionError("the first attempt fails")
    return path.read_text()


@mw.step(cache=False)
def uncached(value: int) -> int:
    CALLS["uncached"] += 1
    return value + 1


@mw.step
def explode(df: pd.DataFrame, marker: str) -> pd.DataFrame:
    """Fails while the marker file exists: a broken step, fixed by deleting the file."""
    if os.path.exists(marker):
        raise RuntimeError("broken step")
    return df.head(3)


@mw.pipeline
def resumable(marker: str) -> Any:
    df = features(load(50))
    return {"head": size_of(explode(df, marker)), "stats": stats(df)}


@mw.step
def generator(n: int) -> Any:
    return (i for i in range(n))


@mw.step(allow_pickle=True)
def pickled_set(n: int) -> set[int]:
    return set(range(n))


@mw.step
def size_of(values: Any) -> int:
    return len(values)


@mw.step(cache=False)
def retrain(df: pd.DataFrame) -> LogisticRegression:
    """Always runs (a scheduled retraining): the same data gives the same model."""
    CALLS["retrain"] += 1
    return LogisticRegression().fit(df[["a", "b"]].to_numpy(), df["label"])


@mw.pipeline
def retraining(rows: int = 60) -> Any:
    df = features(load(rows))
    return score(retrain(df), matrix(df))
