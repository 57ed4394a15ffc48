"""The trace of a model version: run, datasets (with hashes), code, environment, aliases, audit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import modelworks as mw


def test_trace_follows_version_to_data_code_and_environment(workspace: mw.Workspace) -> None:
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"amount": rng.normal(size=100), "prior": rng.integers(0, 3, 100)})
    y = (x["amount"] > 0).astype(int)
    train = workspace.log_dataset(x.assign(y=y), name="claims-train")
    with workspace.start_run(experiment="claims", name="lr") as run:
        run.use_dataset(train, role="train")
        mv = workspace.register_model("claims-triage", model=LogisticRegression().fit(x, y),
                                      run=run, input_example=x.head())
    workspace.set_alias("claims-triage", "staging", mv.version, reason="first candidate")

    tr = workspace.trace("models:/claims-triage@staging")
    assert tr.version.version == 1
    kinds = {n.type for n in tr.graph.nodes}
    assert {"model_version", "run", "dataset_version", "environment"} <= kinds
    ds_facts = tr.graph.facts[f"dataset_version:{train.id}"]
    assert ds_facts["content_hash"] == train.content_hash and ds_facts["rows"] == 100
    run_facts = tr.graph.facts[f"run:{run.id}"]
    assert run_facts["name"] == "lr" and len(run_facts["packages_hash"]) == 64
    assert [(m.alias, m.version, m.reason) for m in tr.alias_moves] == [
        ("staging", 1, "first candidate")]
    assert [e.action for e in tr.audit] == ["model_version.registered",
                                            "model_version.reference_stored"]
    text = tr.render_tree()
    assert "model_version:claims-triage/1" in text and "[trained_by] run:" in text
    assert "[used:train] dataset_version:" in text and "alias history" in text
    dumped = json.loads(tr.model_dump_json())
    assert dumped["graph"]["root"] == {"type": "model_version", "id": "claims-triage/1"}
    from modelworks.lineage import render_dot

    dot = render_dot(tr.graph)
    assert dot.startswith("digraph lineage {") and '"model_version:claims-triage/1" -> "run:' in dot
