"""Model formats: real round trips, format detection, and what loading refuses."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from modelworks.errors import IntegrityError, InvalidInput
from modelworks.registry.formats import (
    FORMATS,
    SavedModel,
    detect_format,
    get_format,
    load_model,
    save_model,
)
from modelworks.registry.formats.base import ModelFormat
from modelworks.registry.formats.sklearn import is_trusted_type


@pytest.fixture
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 60
    x = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "size": rng.normal(10, 3, size=n),
            "weight": rng.normal(50, 10, size=n),
        }
    )
    y = ((x["size"] > 10) ^ (x["colour"] == "red")).to_numpy().astype(int)
    return x, y


class Scorer:
    """A plain Python model: no safe format knows it."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def predict(self, x: list[float]) -> list[float]:
        return [v + self.offset for v in x]


class CustomClassifier(ClassifierMixin, BaseEstimator):
    """An estimator subclass outside scikit-learn: skops must not trust it by default."""

    def fit(self, x: Any, y: Any) -> CustomClassifier:
        self.classes_ = np.unique(y)
        return self

    def predict(self, x: Any) -> np.ndarray:
        return np.full(len(x), self.classes_[0])


def double(x: Any) -> Any:
    return x * 2


def _name(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


# -- sklearn round trips ----------------------------------------------------------------------


def test_logistic_regression_round_trip(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = frame
    model = LogisticRegression().fit(x[["size", "weight"]], y)

    saved = save_model(model, allow_pickle=False)
    loaded = load_model(saved)

    assert saved.format == "sklearn"
    assert saved.library == "scikit-learn"
    assert isinstance(loaded, LogisticRegression)
    np.testing.assert_array_equal(
        loaded.predict_proba(x[["size", "weight"]]), model.predict_proba(x[["size", "weight"]])
    )


def test_pipeline_with_column_transformer_round_trip(
    frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, y = frame
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("onehot", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                        ("scale", StandardScaler(), ["size", "weight"]),
                    ]
                ),
            ),
            ("forest", RandomForestClassifier(n_estimators=10, random_state=0)),
        ]
    ).fit(x, y)

    fmt = detect_format(model, allow_pickle=False)
    loaded = fmt.load(fmt.save(model))

    assert fmt.name == "sklearn"
    assert not fmt.executes_code_on_load
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_sklearn_bytes_are_skops_own_archive_with_a_compact_schema(
    frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    import skops.io as sio

    from modelworks.registry.formats.sklearn import _compact_matches, _normalised

    x, y = frame
    model = Pipeline([("prep", ColumnTransformer([
        ("onehot", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ("scale", StandardScaler(), ["size", "weight"])])),
        ("model", LogisticRegression())]).fit(x, y)
    data = get_format("sklearn").save(model)
    theirs = bytes(sio.dumps(model))

    assert _compact_matches()  # the installed skops writes what the fast writer writes
    assert _normalised(data) == _normalised(theirs)  # same schema and arrays, ids aside
    assert len(data) < len(theirs)  # the schema without indentation
    # skops itself reads it, and its scan sees the same types
    assert sio.get_untrusted_types(data=data) == sio.get_untrusted_types(data=theirs)
    loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


_FIT_AND_HASH = """
import hashlib, numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from modelworks.registry.formats import save_model
x = np.random.default_rng(0).normal(size=(80, 3))
model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0))
print(hashlib.sha256(save_model(model.fit(x, x[:, 0] > 0)).data).hexdigest())
"""


def test_equal_models_give_equal_bytes_in_any_process() -> None:
    import contextlib
    import io
    import subprocess
    import sys

    hashes = []
    for _ in range(2):  # fitted twice here (other objects, other ids), and in two processes
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(_FIT_AND_HASH, {})
        hashes.append(printed.getvalue().strip())
        done = subprocess.run([sys.executable, "-c", _FIT_AND_HASH], capture_output=True,
                              text=True, check=True, timeout=120)
        hashes.append(done.stdout.strip())
    assert len(set(hashes)) == 1 and len(hashes[0]) == 64


def test_saved_model_is_frozen() -> None:
    saved = save_model(LogisticRegression(), allow_pickle=False)
    assert saved.library_version
    with pytest.raises(ValueError):
        saved.format = "pickle"  # type: ignore[misc]


# -- detection --------------------------------------------------------------------------------


def test_detect_format_prefers_sklearn_even_with_pickle_allowed() -> None:
    assert detect_format(LogisticRegression(), allow_pickle=True).name == "sklearn"


def test_plain_object_needs_allow_pickle() -> None:
    with pytest.raises(InvalidInput) as info:
        detect_format(Scorer(1.0), allow_pickle=False)
    assert info.value.field == "model"
    assert "sklearn" in str(info.value)
    assert "allow_pickle=True" in str(info.value)

    assert detect_format(Scorer(1.0), allow_pickle=True).name == "pickle"


def test_every_registered_format_implements_the_interface() -> None:
    for name in FORMATS:
        fmt = get_format(name)
        assert isinstance(fmt, ModelFormat)
        assert fmt.name == name


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        get_format("joblib")
    assert info.value.field == "format"
    assert "sklearn" in str(info.value) and "pickle" in str(info.value)


# -- pickle is opt-in -------------------------------------------------------------------------


def test_pickle_round_trip_with_allow_pickle() -> None:
    saved = save_model(Scorer(1.5), allow_pickle=True)
    assert saved.format == "pickle"
    assert get_format("pickle").executes_code_on_load

    loaded = load_model(saved, allow_pickle=True)

    assert loaded.predict([1.0, 2.0]) == [2.5, 3.5]


def test_pickle_load_without_allow_pickle_is_refused() -> None:
    saved = save_model(Scorer(1.5), allow_pickle=True)
    with pytest.raises(InvalidInput) as info:
        load_model(saved)
    assert info.value.field == "allow_pickle"
    assert "arbitrary code" in str(info.value)


def test_unpicklable_object_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        save_model(lambda v: v, allow_pickle=True)
    assert info.value.field == "model"


# -- what skops loading refuses ---------------------------------------------------------------


def test_function_transformer_with_a_foreign_function_is_refused(
    frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, _ = frame
    model = FunctionTransformer(double).fit(x[["size"]])
    data = get_format("sklearn").save(model)

    with pytest.raises(IntegrityError) as info:
        get_format("sklearn").load(data)
    assert _name(double) in str(info.value)

    # The caller can trust a reviewed type by name.
    loaded = get_format("sklearn").load(data, trusted_types=[_name(double)])
    np.testing.assert_array_equal(loaded.transform(x[["size"]]), model.transform(x[["size"]]))


def test_custom_estimator_subclass_is_refused(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = frame
    model = CustomClassifier().fit(x, y)
    saved = save_model(model, allow_pickle=False)
    assert saved.format == "sklearn"

    with pytest.raises(IntegrityError) as info:
        load_model(saved, allow_pickle=True)  # allow_pickle does not widen skops trust
    assert _name(CustomClassifier) in str(info.value)
    assert "trusted_types" in str(info.value)


def test_builtin_functions_are_not_trusted_wholesale() -> None:
    # A FunctionTransformer(func=eval) would run eval on every predict.
    data = get_format("sklearn").save(FunctionTransformer(builtins.eval))
    with pytest.raises(IntegrityError) as info:
        get_format("sklearn").load(data)
    assert "builtins.eval" in str(info.value)


def test_trust_policy() -> None:
    assert is_trusted_type("sklearn.tree._tree.Tree")
    assert is_trusted_type("scipy.sparse._csr.csr_matrix")
    assert is_trusted_type("collections.OrderedDict")
    assert is_trusted_type("numpy.dtype")
    assert not is_trusted_type("numpy.save")
    assert not is_trusted_type("builtins.exec")
    assert not is_trusted_type("numpyx.Evil")
    assert not is_trusted_type("os.system")
    assert not is_trusted_type("sklearn.no_such_module.Thing")


def test_garbage_bytes_are_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        get_format("sklearn").load(b"not a zip file")
    with pytest.raises(IntegrityError):
        load_model(
            SavedModel(format="pickle", data=b"junk", library="python", library_version="3"),
            allow_pickle=True,
        )
