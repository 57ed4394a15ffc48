"""Monitoring plans: YAML validation naming line and field, and rule evaluation (no database)."""

from __future__ import annotations

import hashlib
import hmac
import math
import random

import pytest

import modelworks as mw
from modelworks.monitoring.alerts import evaluate_rules, parse_plan, sign, verify_signature
from modelworks.monitoring.alerts.delivery import MAX_BACKOFF, backoff_delay
from modelworks.monitoring.alerts.plan import FileSink, LogSink, WebhookSink
from modelworks.monitoring.alerts.rules import ABSENT, NOT_A_NUMBER, match_keys, segment_of

PLAN = """\
description: claims triage
rules:
  - name: dataset-drift
    metric: drift.share
    op: ">"
    threshold: 0.3
    severity: critical
    cooldown: 6h
    action: retrain
  - name: psi
    metric: drift.column.*.psi
    op: ">="
    threshold: 0.2
sinks:
  - {type: log}
  - {type: file, path: alerts.jsonl}
  - {type: webhook, url: "http://127.0.0.1:9/hook", secret_env: MW_HOOK_SECRET, retries: 2}
schedule: {every: 1h}
"""


def test_a_valid_plan_and_its_defaults() -> None:
    spec = parse_plan(PLAN)
    drift, psi = spec.rules
    assert (drift.severity, drift.cooldown_span.total_seconds(), drift.action) == (
        "critical", 6 * 3600, "retrain")
    assert (psi.severity, psi.cooldown, psi.action) == ("warning", "1h", "none")
    log, file, hook = spec.sinks
    assert isinstance(log, LogSink) and isinstance(file, FileSink)
    assert isinstance(hook, WebhookSink) and (hook.retries, hook.timeout) == (2, 5.0)
    assert spec.schedule is not None and spec.schedule.window is None
    # without a sinks key, alerts go to the log; an empty list keeps them in the table only
    assert [s.type for s in parse_plan("rules: []").sinks] == ["log"]
    assert parse_plan("sinks: []").sinks == []


@pytest.mark.parametrize(("text", "expected"), [
    ("rules:\n  - name: a\n    metric: drift.share\n    op: '=>'\n    threshold: 1\n",
     "line 4: rules.0.op"),
    ("rules:\n  - name: a\n    metric: drfit.share\n    op: '>'\n    threshold: 1\n",
     "line 3: rules.0.metric: unknown metric 'drfit.share'"),
    ("rules:\n  - name: a\n    metric: segment.region=north.drfit\n    op: '>'\n"
     "    threshold: 1\n", "line 3: rules.0.metric: unknown segment metric"),
    ("rules:\n  - name: a\n    metric: rows\n    op: '<'\n    threshold: 1\n"
     "    cooldown: 6 hours\n", "line 6: rules.0.cooldown: cooldown must look like"),
    ("rules:\n  - name: a\n    metric: rows\n    op: '<'\n    treshold: 1\n",
     "line 5: rules.0.treshold: Extra inputs are not permitted"),
    ("rules:\n  - name: a\n    metric: rows\n    op: '<'\n    threshold: 1\n"
     "  - name: a\n    metric: rows\n    op: '>'\n    threshold: 9\n",
     "rule names must be unique; repeated: a"),
    ("sinks:\n  - {type: log}\n  - type: webhook\n    secret_env: MW_SECRET\n",
     "line 3: sinks.1.url: Field required"),
    ("sinks:\n  - type: webhook\n    url: http://x/h\n    secret_env: s3cr3t-value!\n",
     "line 4: sinks.0.secret_env: secret_env is the NAME of an environment variable"),
    ("sinks:\n  - {type: pager}\n", "line 2: sinks.0"),
    ("sinks:\n  - {type: webhook, url: 'ftp://x'}\n", "sinks.0.url: url must be an http"),
    ("schedule: {every: often}\n", "line 1: schedule.every"),
    ("rules:\n  - name: a\n    metric: rows\n   op: '<'\n", "line 4: not valid YAML"),
    ("- just\n- a list\n", "a monitoring plan is a YAML mapping"),
])
def test_errors_name_the_line_and_the_field(text: str, expected: str) -> None:
    with pytest.raises(mw.InvalidInput) as caught:
        parse_plan(text, "p.yaml")
    assert expected in str(caught.value), str(caught.value)
    assert str(caught.value).startswith("p.yaml")


def test_the_error_carries_the_field() -> None:
    with pytest.raises(mw.InvalidInput) as caught:
        parse_plan("rules:\n  - name: a\n    metric: rows\n    op: '<'\n    threshold: x\n")
    assert caught.value.field == "rules.0.threshold"


def _plan(*rules: str) -> str:
    return "rules:\n" + "".join(rules)


def _rule(name: str, metric: str, op: str, threshold: float) -> str:
    return f"  - {{name: {name}, metric: '{metric}', op: '{op}', threshold: {threshold}}}\n"


@pytest.mark.parametrize(("op", "value", "breached"), [
    (">", 0.3, False), (">", 0.31, True), (">=", 0.3, True), (">=", 0.29, False),
    ("<", 0.3, False), ("<", 0.29, True), ("<=", 0.3, True), ("<=", 0.31, False),
    ("==", 1.0, False), ("==", 0.3, True),
])
def test_each_operator(op: str, value: float, breached: bool) -> None:
    spec = parse_plan(_plan(_rule("r", "drift.share", op, 0.3)))
    (check,) = evaluate_rules(spec, {"drift.share": value})
    assert check.status == ("breached" if breached else "ok")
    assert check.value == value


def test_globs_segments_and_absent_metrics() -> None:
    metrics = {"drift.column.amount.psi": 0.4, "drift.column.age.psi": 0.01,
               "drift.column.amount.score": 0.9, "segment.region=north.drift.share": 0.6,
               "segment.region=south.drift.share": 0.1,
               "segment.region=[x].positive_rate": 0.9, "quality.error_rate": math.nan}
    spec = parse_plan(_plan(
        _rule("psi", "drift.column.*.psi", ">", 0.2),
        _rule("region", "segment.region=*.drift.share", ">", 0.5),
        _rule("bracket", "segment.region=[x].positive_rate", ">", 0.5),
        _rule("acc", "performance.accuracy.drop", ">", 0.05),
        _rule("quality", "quality.error_rate", ">", 0.01)))
    checks = {(c.rule, c.metric): c for c in evaluate_rules(spec, metrics)}
    assert checks[("psi", "drift.column.amount.psi")].status == "breached"
    assert checks[("psi", "drift.column.age.psi")].status == "ok"
    assert ("psi", "drift.column.amount.score") not in checks
    assert checks[("region", "segment.region=north.drift.share")].status == "breached"
    assert checks[("region", "segment.region=south.drift.share")].status == "ok"
    # only * is special: brackets in a segment value match themselves
    assert checks[("bracket", "segment.region=[x].positive_rate")].status == "breached"
    absent = checks[("acc", "performance.accuracy.drop")]
    assert (absent.status, absent.reason, absent.value) == ("not_evaluated", ABSENT, None)
    nan = checks[("quality", "quality.error_rate")]
    assert (nan.status, nan.reason) == ("not_evaluated", NOT_A_NUMBER)
    assert len(checks) == 7


def test_keys_and_segments() -> None:
    keys = ["drift.share", "drift.column.a.b.psi", "drift.column.a.psi"]
    assert match_keys("drift.column.*.psi", keys) == ["drift.column.a.b.psi",
                                                       "drift.column.a.psi"]
    assert match_keys("drift.share", keys) == ["drift.share"]
    assert match_keys("drift.s*e", ["drift.share", "drift.shore"]) == ["drift.share",
                                                                        "drift.shore"]
    assert segment_of("segment.region=north.drift.share") == ("region", "north")
    assert segment_of("segment.tier=1.5.positive_rate") == ("tier", "1.5")
    assert segment_of("drift.share") is None
    # a segment value holding dots still names a known key
    parse_plan(_plan(_rule("r", "segment.email=a.b@c.d.rows", "<", 10)))


def test_signature_is_the_hmac_of_the_body() -> None:
    body = b'{"alert": 1}'
    expected = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert sign("k3y", body) == expected
    assert verify_signature("k3y", body, expected)
    assert not verify_signature("other", body, expected)
    assert not verify_signature("k3y", body + b" ", expected)
    assert not verify_signature("k3y", body, None)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(4)
    for retry in range(1, 6):
        delay = 0.5 * 2 ** (retry - 1)
        draws = [backoff_delay(retry, 0.5, rng=rng) for _ in range(50)]
        assert all(delay / 2 <= d <= delay for d in draws)
        assert len(set(draws)) > 1  # jittered
    assert backoff_delay(30, 1.0, rng=rng) <= MAX_BACKOFF
