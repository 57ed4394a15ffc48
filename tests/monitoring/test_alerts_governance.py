"""A policy can require a monitoring plan before promotion (evidence: monitoring_plan)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelworks as mw

POLICY = """\
name: watched
rules:
  - evidence: [monitoring_plan]
"""


def test_promotion_needs_a_plan_with_a_rule(workspace: mw.Workspace) -> None:
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"amount": rng.normal(100, 20, 300), "prior": rng.integers(0, 4, 300)})
    y = (x["amount"] > 100).astype(int)
    workspace.register_model("claims", model=LogisticRegression().fit(x, y),
                             input_example=x.head())
    workspace.apply_policy(POLICY)
    with pytest.raises(mw.PolicyViolation, match="missing a monitoring plan with at least "
                                                 "one alert rule"):
        workspace.set_alias("claims", "production", 1, reason="ship")
    workspace.set_monitoring_plan("claims", "sinks: []\n")  # a plan without rules
    with pytest.raises(mw.PolicyViolation, match="monitoring plan"):
        workspace.set_alias("claims", "production", 1, reason="ship")
    workspace.set_monitoring_plan("claims", "rules:\n  - {name: drift, metric: drift.share, "
                                            "op: '>', threshold: 0.3}\n")
    moved = workspace.set_alias("claims", "production", 1, reason="ship")
    assert moved.version == 1
    evaluation = workspace.policy_evaluations("claims/1")[0]
    assert evaluation.passed
    rule = next(r for r in evaluation.outcomes[0].rules if r.rule.startswith("evidence"))
    assert (rule.rule, rule.reason) == ("evidence: monitoring_plan", "all present")
    refused = [e for e in workspace.policy_evaluations("claims/1") if not e.passed]
    assert len(refused) == 2  # both refusals are on the record


def test_unknown_evidence_is_still_refused(workspace: mw.Workspace) -> None:
    with pytest.raises(mw.InvalidInput, match="monitoring_plan"):
        workspace.apply_policy("name: p\nrules:\n  - evidence: [monitoring]\n")
