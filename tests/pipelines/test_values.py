"""Values between steps: each safe format round-trips; everything else is refused by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from modelworks.errors import InvalidInput
from modelworks.pipelines.values import decode, encode


class Opaque:
    pass


@pytest.mark.parametrize(("value", "fmt"), [
    ({"a": [1, 2.5, None, "x"], "b": True}, "json"),
    (3, "json"),
    (np.int64(7), "json"),
    (pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}, index=[10, 20]), "parquet"),
    (pd.Series([1.5, 2.5], name="price"), "series.parquet"),
    (np.arange(6, dtype=np.float32).reshape(2, 3), "npy"),
])
def test_safe_values_round_trip(value: Any, fmt: str) -> None:
    enc = encode(value, step="s")
    assert enc.format == fmt
    back = decode(enc.data, enc.format)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value)
    elif isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and (back == value).all()
    else:
        assert back == (value.item() if isinstance(value, np.generic) else value)


def test_frames_encode_to_the_same_bytes_every_time() -> None:
    frame = pd.DataFrame({"x": np.arange(100), "y": np.linspace(0, 1, 100)})
    assert encode(frame, step="s").data == encode(frame.copy(), step="s").data


def test_a_model_uses_the_registrys_safe_format() -> None:
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, X[:, 0] > 0)
    enc = encode(model, step="train")
    assert enc.format == "model:sklearn"
    assert enc.type == "sklearn.ensemble._forest.RandomForestClassifier"
    assert (decode(enc.data, enc.format).predict(X) == model.predict(X)).all()


@pytest.mark.parametrize(("value", "type_name"), [
    (Opaque(), f"{__name__}.Opaque"), ({1, 2}, "set"), ({1: "int key"}, "dict"),
    (lambda x: x, "function")])
def test_other_values_are_refused_naming_step_and_type(value: Any, type_name: str) -> None:
    with pytest.raises(InvalidInput, match="allow_pickle=True") as exc:
        encode(value, step="prepare")
    assert f"step 'prepare' returned {type_name}" in str(exc.value)
    assert exc.value.field == "output"


def test_object_arrays_need_pickle_and_pickle_needs_consent_to_load() -> None:
    values = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(InvalidInput, match="dtype=object"):
        encode(values, step="s")
    enc = encode(values, step="s", allow_pickle=True)
    assert enc.format == "pickle"
    with pytest.raises(InvalidInput, match="loading a pickle runs code"):
        decode(enc.data, enc.format)
    assert decode(enc.data, enc.format, allow_pickle=True).tolist() == [{"a": 1}, None]
    with pytest.raises(InvalidInput, match="unknown value format"):
        decode(b"", "yaml")
