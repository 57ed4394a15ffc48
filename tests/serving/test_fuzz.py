"""Property-based fuzzing of the published OpenAPI schema (schemathesis): never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import modelworks as mw
from modelworks.config import Settings
from modelworks.serving.app import create_app

from .conftest import Running, start

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("fuzz")
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    ws = mw.Workspace(folder / "ws", user="alice",
                      settings=Settings(serve_max_body_bytes=100_000))
    ws.register_model("bc", model=LogisticRegression(max_iter=5000).fit(x, y),
                      input_example=x.head())
    ws.set_alias("bc", "production", 1, reason="fuzz", force=True)
    ws.create_deployment("claims", model="bc/1")
    running = start(create_app(ws, models=["bc/1"]))
    yield running
    running.stop()
    ws.close()


def test_no_server_errors_on_any_operation(fuzz_server: Running) -> None:
    # schemathesis' pytest plugin trips on pytest 9's nodes; drive its strategies directly.
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=fuzz_server.url, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: "
                                f"{response.status_code} {response.text[:200]}")
            if response.status_code >= 400 and "Traceback" in response.text:
                failures.append(f"{case.method} {case.formatted_path}: a traceback")

        check()
    assert not failures, "\n".join(failures[:10])
