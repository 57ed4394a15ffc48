"""The prediction server over a real socket: protocols, errors, cache, aliases, metrics."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import modelworks as mw
from modelworks.registry.uri import parse_model_uri


def _row(x: pd.DataFrame, i: int = 0) -> dict:
    return {k: float(v) for k, v in x.iloc[i].items()}


def test_native_shapes_probabilities_and_versions(serve, cancer) -> None:
    x, _ = cancer
    srv = serve(models=["bc@staging"])
    rows = [_row(x, i) for i in range(3)]
    expected = LogisticRegression(max_iter=5000).fit(*cancer).predict(x.head(3)).tolist()
    for body in ({"instances": rows},
                 {"dataframe_records": rows},
                 {"dataframe_split": {"columns": list(rows[0]),
                                      "data": [list(r.values()) for r in rows]}},
                 {"inputs": {k: [r[k] for r in rows] for k in rows[0]}},
                 {"instances": [list(r.values()) for r in rows]}):
        reply = srv.client.post("/v1/models/bc@staging/predict", json=body)
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data["predictions"] == expected
        assert (data["model"], data["version"]) == ("bc", 1)
        assert len(data["request_id"]) == 26
    pinned = srv.client.post("/v1/models/bc/predict", json={"instances": rows[:1]}).json()
    assert pinned["version"] == 1  # a bare name is the pinned version
    v2 = srv.client.post("/v1/models/bc/versions/2/predict?probabilities=true",
                         json={"instances": rows[:2]}).json()
    assert v2["version"] == 2 and v2["classes"] == [0, 1]
    assert len(v2["probabilities"]) == 2 and abs(sum(v2["probabilities"][0]) - 1) < 1e-9
    flag = srv.client.post("/v1/models/bc/versions/2/predict",
                           json={"instances": rows[:1], "probabilities": True}).json()
    assert "probabilities" in flag


def test_numeric_models_take_the_fast_path_pipelines_the_frame(serve, serving_ws) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.normal(100, 10, 200), "region": rng.choice(
        ["n", "s"], 200)})
    y = (frame["amount"] > 100).astype(int)
    pipe = make_pipeline(make_column_transformer((OneHotEncoder(), ["region"]),
                                                 remainder="passthrough"),
                         LogisticRegression()).fit(frame, y)
    serving_ws.register_model("mixed", model=pipe, input_example=frame.head())
    srv = serve()
    ok = srv.client.post("/v1/models/mixed/predict",
                         json={"instances": [{"amount": 120.0, "region": "n"}]})
    assert ok.status_code == 200 and ok.json()["predictions"] == pipe.predict(
        pd.DataFrame({"amount": [120.0], "region": ["n"]})).tolist()
    srv.client.post("/v1/models/bc/predict", json={"instances": [{"x": 1}]})
    cache = srv.app.state.serving.cache
    assert cache.cached(parse_model_uri("mixed/1")).fast is False
    assert cache.cached(parse_model_uri("bc/2")).fast is True


def test_mlflow_invocations_json_and_csv(serve, cancer) -> None:
    x, _ = cancer
    srv = serve(models=["bc@staging"])
    rows = [_row(x, i) for i in range(2)]
    reply = srv.client.post("/invocations", json={"dataframe_split": {
        "columns": list(rows[0]), "data": [list(r.values()) for r in rows]}})
    assert reply.status_code == 200 and reply.json() == {"predictions": [0, 0]}
    csv = srv.client.post("/invocations", content=x.head(2).to_csv(index=False),
                          headers={"content-type": "text/csv"})
    assert csv.status_code == 200 and csv.json() == {"predictions": [0, 0]}
    bad = srv.client.post("/invocations", json={"dataframe_records": [{"mean_radius": "x"}]})
    assert bad.status_code == 422
    assert bad.json()["error_code"] == "BAD_REQUEST" and "mean_radius" in bad.json()["message"]
    assert srv.client.get("/ping").status_code == 200
    two = serve(models=["bc/1", "bc/2"])
    refused = two.client.post("/invocations", json={"instances": rows})
    assert refused.status_code == 404
    assert refused.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_open_inference_v2(serve, cancer) -> None:
    x, _ = cancer
    srv = serve(models=["bc@staging"])
    row = _row(x)
    tabular = srv.client.post("/v2/models/bc/infer", json={
        "parameters": {"content_type": "pd"},
        "inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
                   for k, v in row.items()]})
    assert tabular.status_code == 200, tabular.text
    out = tabular.json()
    assert (out["model_name"], out["model_version"]) == ("bc", "1")
    assert out["outputs"][0] == {"name": "predict", "shape": [1], "datatype": "INT64",
                                 "data": [0]}
    tensor = srv.client.post("/v2/models/bc/versions/2/infer", json={
        "inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64",
                    "data": [list(_row(x, i).values()) for i in range(2)]}],
        "outputs": [{"name": "predict_proba"}]})
    assert tensor.status_code == 200, tensor.text
    names = [o["name"] for o in tensor.json()["outputs"]]
    assert names == ["predict", "predict_proba"]
    assert tensor.json()["outputs"][1]["shape"] == [2, 2]
    meta = srv.client.get("/v2/models/bc").json()
    assert meta["name"] == "bc" and meta["versions"] == ["1", "2"]
    assert meta["inputs"][0] == {"name": "mean_radius", "datatype": "FP64", "shape": [-1]}
    assert srv.client.get("/v2/models/bc/versions/2/ready").json()["ready"] is True
    assert srv.client.get("/v2/health/live").json() == {"live": True}
    assert srv.client.get("/v2/health/ready").json() == {"ready": True}
    assert srv.client.get("/v2").json()["name"] == "modelworks"
    wrong = srv.client.post("/v2/models/bc/infer", json={"inputs": [
        {"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]})
    assert wrong.status_code == 422 and "30" in wrong.json()["error"]
    missing = srv.client.get("/v2/models/nope/ready")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


@pytest.mark.parametrize(("body", "headers", "status", "mention"), [
    (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
    (b'{"instances": [{"a": NaN}]}', {"content-type": "application/json"}, 400, "NaN"),
    (b'{"instances": []}', {"content-type": "application/json"}, 422, "no rows"),
    (b'{"rows": []}', {"content-type": "application/json"}, 400, "instances"),
    (b'[1, 2]', {"content-type": "application/json"}, 400, "JSON object"),
    (b'{"instances": [{}]}', {"content-type": "text/plain"}, 415, "content-type"),
    (b'{"instances": [{"mean_radius": 1}]}', {"content-type": "application/json"}, 422,
     "missing columns"),
    (b"{" + b" " * 300_000 + b"}", {"content-type": "application/json"}, 413, "bytes"),
])
def test_bad_requests_are_4xx_naming_the_problem(serve, body, headers, status,
                                                 mention) -> None:
    srv = serve(models=["bc@staging"])
    reply = srv.client.post("/v1/models/bc/predict", content=body, headers=headers)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert mention in error and "Traceback" not in error and "/work" not in error
    assert len(reply.content) < 2_000  # never echoes the payload


def test_wrong_types_and_unknown_models(serve, cancer) -> None:
    x, _ = cancer
    srv = serve()
    row = _row(x)
    typed = srv.client.post("/v1/models/bc/predict", json={"instances": [
        {**row, "mean_radius": "12", "mean_area": None, "extra": 1}]})
    assert typed.status_code == 422
    message = typed.json()["error"]
    assert "'mean_radius' (expected float, found string)" in message
    assert "'extra'" in message and "'mean_area' (1 missing)" in message
    for path in ("/v1/models/nope/predict", "/v1/models/bc/versions/9/predict",
                 "/v1/models/bc@gone/predict"):
        reply = srv.client.post(path, json={"instances": [row]})
        assert reply.status_code == 404, path
    bad_name = srv.client.post("/v1/models/bad%20name/predict", json={"instances": [row]})
    assert bad_name.status_code == 422 and "name" in bad_name.json()["error"]


def test_alias_moves_are_picked_up_and_cache_evicts(serving_ws, serve, cancer) -> None:
    x, _ = cancer
    srv = serve(models=["bc@staging"])
    row = _row(x)
    assert srv.client.post("/v1/models/bc@staging/predict",
                           json={"instances": [row]}).json()["version"] == 1
    serving_ws.set_alias("bc", "staging", 2, reason="better")
    deadline = time.monotonic() + 10
    version = 1
    while version != 2 and time.monotonic() < deadline:
        version = srv.client.post("/v1/models/bc@staging/predict",
                                  json={"instances": [row]}).json()["version"]
        time.sleep(0.05)
    assert version == 2  # no restart needed

    state = srv.app.state.serving
    state.cache.budget = state.cache.stats().bytes + 1  # room for about one more version
    for i in range(6):
        serving_ws.register_model("many", model=LogisticRegression(max_iter=3000).fit(*cancer),
                                  input_example=x.head(), tags={"i": str(i)})
    for v in range(1, 7):
        reply = srv.client.post(f"/v1/models/many/versions/{v}/predict",
                                json={"instances": [row]})
        assert reply.status_code == 200 and reply.json()["version"] == v
    stats = state.cache.stats()
    assert stats.evictions >= 4 and stats.bytes <= stats.budget_bytes + 10**6


def test_health_and_metrics(serve, cancer) -> None:
    x, _ = cancer
    srv = serve(models=["bc/1"])
    assert srv.client.get("/v1/health/live").status_code == 200
    ready = srv.client.get("/v1/health/ready")
    assert ready.status_code == 200 and ready.json()["models"] == ["models:/bc/1"]
    srv.client.post("/v1/models/bc/predict", json={"instances": [_row(x)]})
    srv.client.post("/v1/models/bc/predict", json={"instances": [{"x": 1}]})
    text = srv.client.get("/metrics").text
    assert 'modelworks_requests_total{code="200",model="bc",route="model",version="1"} 1.0' \
        in text
    assert 'modelworks_request_errors_total{code="422",model="bc",route="model"} 1.0' in text
    assert "modelworks_request_latency_seconds_bucket" in text
    assert "modelworks_model_cache_models 1.0" in text
    assert "modelworks_prediction_log_lag_records" in text


def test_many_models_each_answer(serving_ws, serve, cancer) -> None:
    x, y = cancer
    model = LogisticRegression(max_iter=3000).fit(x, y)
    names = [f"m{i:03d}" for i in range(25)]
    for name in names:
        serving_ws.register_model(name, model=model, input_example=x.head())
    srv = serve()
    row = _row(x)
    for name in names:
        reply = srv.client.post(f"/v1/models/{name}/predict", json={"instances": [row]})
        assert reply.status_code == 200 and reply.json()["model"] == name
    assert srv.app.state.serving.cache.stats().loaded == 25


def test_predictions_are_logged_before_the_answer(serving_ws, serve, cancer) -> None:
    x, _ = cancer
    srv = serve(models=["bc@staging"])
    reply = srv.client.post("/v1/models/bc@staging/predict",
                            json={"instances": [_row(x, 0), _row(x, 1)]}).json()
    logged = serving_ws.predictions(model="bc")
    ids = set(logged["prediction_id"])
    assert {f"{reply['request_id']}:0", f"{reply['request_id']}:1"} <= ids
    got = serving_ws.get_prediction(f"{reply['request_id']}:1")
    assert (got.model, got.version, got.output) == ("bc", 1, reply["predictions"][1])
    assert got.inputs["mean_radius"] == pytest.approx(float(x.iloc[1]["mean_radius"]))


def test_batch_scoring_file(serving_ws, cancer, tmp_path) -> None:
    from modelworks.serving.batch import score_file

    x, _ = cancer
    source = tmp_path / "in.parquet"
    x.to_parquet(source)
    done = []
    summary = score_file(serving_ws, "bc@staging", source, tmp_path / "out.csv",
                         chunk_rows=100, probabilities=True,
                         progress=lambda d, t: done.append((d, t)))
    out = pd.read_csv(tmp_path / "out.csv")
    assert summary.rows == len(x) == len(out) and summary.chunks == 6
    assert {"prediction", "proba_0", "proba_1"} <= set(out.columns)
    assert done[-1] == (len(x), len(x))
    with pytest.raises(mw.InvalidInput, match="rows 1-"):
        x.drop(columns=["mean_radius"]).to_parquet(tmp_path / "bad.parquet")
        score_file(serving_ws, "bc/1", tmp_path / "bad.parquet", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_endpoint_routes_sticky_shadows_logged_and_switch_off(serving_ws, serve,
                                                              cancer) -> None:
    x, _ = cancer
    serving_ws.create_deployment("claims", model="bc/1", canary="bc/2", percent=50,
                                 shadows=["bc@staging"])
    srv = serve()
    row = _row(x)
    answered = {}
    for key in ("alice", "bob", "carol", "dave", "erin", "frank"):
        versions = {srv.client.post("/v1/endpoints/claims/predict", json={"instances": [row]},
                                    headers={"x-routing-key": key}).json()["version"]
                    for _ in range(3)}
        assert len(versions) == 1  # sticky per key
        answered[key] = versions.pop()
    assert set(answered.values()) == {1, 2}  # both routes take traffic
    reply = srv.client.post("/v1/endpoints/claims/predict", json={"instances": [row]}).json()
    deadline = time.monotonic() + 10
    shadow = pd.DataFrame()
    while shadow.empty and time.monotonic() < deadline:  # shadows answer after the reply
        logged = serving_ws.predictions(model="bc", include_shadow=True)
        shadow = logged[(logged["request_id"] == reply["request_id"]) & logged["shadow"]]
        time.sleep(0.05)
    assert len(shadow) == 1 and int(shadow["version"].iloc[0]) == 1  # staging -> v1
    live = serving_ws.predictions(model="bc")
    assert not live["shadow"].any()
    assert set(live.loc[live["request_id"] == reply["request_id"], "endpoint"]) == {"claims"}

    serving_ws.disable_deployment("claims", reason="incident 12: scores drifting")
    time.sleep(0.3)  # past the refresh interval
    off = srv.client.post("/v1/endpoints/claims/predict", json={"instances": [row]})
    assert off.status_code == 503 and "incident 12" in off.json()["error"]
    serving_ws.enable_deployment("claims", reason="fixed")
    serving_ws.disable_deployment("claims", reason="fallback while we look", fallback="bc/2")
    time.sleep(0.3)
    fallback = srv.client.post("/v1/endpoints/claims/predict", json={"instances": [row]})
    assert fallback.status_code == 200 and fallback.json()["version"] == 2
    missing = srv.client.post("/v1/endpoints/nope/predict", json={"instances": [row]})
    assert missing.status_code == 404


def test_feedback_endpoint(serving_ws, serve, cancer) -> None:
    x, _ = cancer
    srv = serve(models=["bc/1"])
    reply = srv.client.post("/v1/models/bc/predict", json={"instances": [_row(x)] * 2}).json()
    rid = reply["request_id"]
    one = srv.client.post("/v1/feedback", json={"prediction_id": f"{rid}:0", "label": 1})
    assert one.status_code == 200 and one.json() == {"recorded": 1}
    batch = srv.client.post("/v1/feedback", json={"feedback": [
        {"prediction_id": f"{rid}:1", "label": 0}]})
    assert batch.json() == {"recorded": 1}
    bad = srv.client.post("/v1/feedback", json={"feedback": [{"prediction_id": "nope",
                                                              "label": 1}]})
    assert bad.status_code == 422 and "feedback[0].prediction_id" in bad.json()["field"]
    labels = serving_ws.predictions(model="bc", with_feedback=True)
    assert labels.set_index("prediction_id").loc[f"{rid}:0", "label"] == 1


def test_explain_a_served_prediction(serving_ws, serve, cancer) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    x, y = cancer
    train = x.assign(target=y)
    with serving_ws.start_run(experiment="explain") as run:
        run.use_dataset(serving_ws.log_dataset(train, name="cancer"), role="train")
        serving_ws.register_model("knn", model=KNeighborsClassifier().fit(x, y), run=run,
                                  input_example=x.head())
    srv = serve()
    linear = srv.client.post("/v1/models/bc/versions/1/predict",
                             json={"instances": [_row(x, 0), _row(x, 5)]}).json()
    other = srv.client.post("/v1/models/knn/predict", json={"instances": [_row(x, 3)]}).json()

    explained = serving_ws.explain_prediction(linear["request_id"], top=5)
    assert explained.method == "shap-linear" and (explained.model, explained.version) == (
        "bc", 1)
    assert [r.prediction_id for r in explained.rows] == [
        f"{linear['request_id']}:0", f"{linear['request_id']}:1"]
    assert all(len(r.contributions) == 5 for r in explained.rows)
    first = explained.rows[0].contributions
    assert abs(first[0].contribution) >= abs(first[-1].contribution)
    one = serving_ws.explain_prediction(f"{other['request_id']}:0")
    assert one.method == "occlusion" and one.background == "cancer:1"
    assert len(one.rows) == 1 and one.rows[0].score is not None
    assert serving_ws.audit_log(action="prediction.explained", limit=None)
    with pytest.raises(mw.NotFound):
        serving_ws.explain_prediction("0" * 26)
    with pytest.raises(mw.InvalidInput, match="request"):
        serving_ws.explain_prediction("not-an-id")


def test_a_numeric_pipeline_takes_the_fast_path(serve, serving_ws, cancer) -> None:
    from sklearn.preprocessing import StandardScaler

    x, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    serving_ws.register_model("scaled", model=pipe, input_example=x.head())
    srv = serve()
    reply = srv.client.post("/v1/models/scaled/predict", json={"instances": [_row(x, 0),
                                                                             _row(x, 1)]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == pipe.predict(x.head(2)).tolist()
    assert srv.app.state.serving.cache.cached(parse_model_uri("scaled/1")).fast is True
