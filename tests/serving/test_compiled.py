"""The NumPy predictors for linear models and the hot-path matrix check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
)

import modelworks as mw
from modelworks.registry.signatures import ColumnSpec, Signature
from modelworks.serving.compiled import compile_linear
from modelworks.serving.inputs import matrix_plan, rows_to_matrix


@pytest.mark.parametrize("classes", [2, 3])
def test_logistic_regression_compiles_to_identical_answers(classes: int) -> None:
    x, y = make_classification(300, 6, n_informative=4, n_classes=classes, random_state=0)
    model = LogisticRegression(max_iter=2000).fit(x, y)
    compiled = compile_linear(model, x[:5])
    assert compiled is not None
    predict, proba = compiled
    fresh = np.random.default_rng(1).normal(size=(500, 6)) * 3
    assert np.array_equal(predict(fresh), model.predict(fresh))
    assert proba is not None
    np.testing.assert_allclose(proba(fresh), model.predict_proba(fresh), rtol=0, atol=1e-12)


@pytest.mark.parametrize("estimator", [LinearRegression(), Ridge(), Lasso(alpha=0.01),
                                       ElasticNet(alpha=0.01)])
def test_linear_regressors_compile(estimator) -> None:
    x, y = make_regression(200, 5, random_state=0)
    model = estimator.fit(x, y)
    compiled = compile_linear(model, x[:5])
    assert compiled is not None and compiled[1] is None
    np.testing.assert_allclose(compiled[0](x), model.predict(x), rtol=1e-12, atol=1e-9)


def test_other_models_keep_scikit_learn() -> None:
    x, y = make_classification(100, 4, random_state=0)
    assert compile_linear(RandomForestClassifier(n_estimators=5).fit(x, y), x[:5]) is None
    ridge = compile_linear(RidgeClassifier().fit(x, y), x[:5])
    assert ridge is not None and ridge[1] is None


def test_matrix_check_matches_the_signature() -> None:
    signature = Signature(inputs=[ColumnSpec(name="a", dtype="float", nullable=True),
                                  ColumnSpec(name="n", dtype="integer", nullable=False),
                                  ColumnSpec(name="b", dtype="boolean", nullable=False)])
    plan = matrix_plan(signature)
    m = rows_to_matrix([{"a": None, "n": 3, "b": True}, {"a": 1, "n": 4.0, "b": False}],
                       signature, plan)
    assert math.isnan(m[0, 0]) and m.tolist()[1] == [1.0, 4.0, 0.0]
    for bad, words in [({"a": 1.0, "n": 1.5, "b": True}, "'n' (expected integer"),
                       ({"a": 1.0, "n": 1, "b": 1}, "'b' (expected boolean"),
                       ({"a": True, "n": 1, "b": True}, "'a' (expected float"),
                       ({"a": 1.0, "n": None, "b": True}, "'n' (1 missing)"),
                       ({"a": 1.0, "b": True}, "missing columns: 'n'"),
                       ({"a": 1.0, "n": 1, "b": True, "z": 0}, "unexpected columns: 'z'")]:
        with pytest.raises(mw.InvalidInput, match="match the model signature") as info:
            rows_to_matrix([bad], signature, plan)
        assert words in str(info.value)
