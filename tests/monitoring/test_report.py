"""The monitoring report: assembled from real monitor runs, rendered, and driven by the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from typer.testing import CliRunner

import modelworks as mw
from modelworks.cli.main import app
from modelworks.monitoring.references import store_reference
from modelworks.monitoring.report import MonitorReport

EVIL = "<script>alert(1)</script>"
FEATURES = ["amount", "prior", EVIL, "region"]
COLUMNS = [*FEATURES, "prediction"]


def _frame(n: int, *, shift: float = 0.0, seed: int = 0, new_region: bool = False
           ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    regions = ["north", "south", "east", "west"] if new_region else ["north", "south", "east"]
    df = pd.DataFrame({"amount": rng.normal(100 + shift, 20, n),
                       "prior": rng.integers(0, 5, n).astype(float),
                       EVIL: rng.normal(45, 10, n),
                       "region": rng.choice(regions, n)})
    df["y"] = ((df["amount"] + 10 * df["prior"] + rng.normal(0, 10, n)) > 120).astype(int)
    return df


def _register(ws: mw.Workspace, name: str = "claims") -> None:
    train = _frame(3_000)
    x = train[FEATURES]
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["region"]),
                                remainder="passthrough"),
        LogisticRegression(max_iter=2_000))
    with ws.start_run(experiment="monitoring") as run:
        run.use_dataset(ws.log_dataset(train, name=f"{name}-train"), role="train")
        ws.register_model(name, model=model.fit(x, train["y"]), run=run, input_example=x.head())


def _shifted_runs(ws: mw.Workspace, uri: str = "claims/1") -> list[str]:
    monitor = ws.monitor(uri)
    return [monitor.run(data=_frame(1_500, shift=shift, seed=i + 1, new_region=shift >= 40)).id
            for i, shift in enumerate([0, 10, 25, 40])]


def _svg(page: str, label: str) -> str:
    found = re.search(r'<svg[^>]*aria-label="' + re.escape(label) + r'".*?</svg>', page, re.S)
    assert found, f"no chart {label!r}"
    return found.group(0)


@pytest.fixture
def report_ws(db_location: tuple[str, str]):
    location, artifacts = db_location
    ws = mw.Workspace(location, artifacts=artifacts, user="alice")
    _register(ws)
    yield ws
    ws.close()


def test_report_of_shifted_runs(report_ws: mw.Workspace, tmp_path: Path) -> None:
    ids = _shifted_runs(report_ws)
    out = tmp_path / "drift.html"
    report = report_ws.monitor_report("models:/claims/1", out=out, runs=3)

    assert report.run_id == ids[-1] and report.model == "claims" and report.version == 1
    assert report.reference == "training" and report.reference_rows == 3_000
    assert report.rows == 1_500 and report.source == "data"
    # the trend: the last 3 runs against this reference, oldest first, scores per column
    assert [p.run_id for p in report.trend] == ids[1:]
    assert [p.share for p in report.trend] == [r.drift.share for r in reversed(
        report_ws.monitor_runs("claims/1", limit=3))]
    amount_scores = [p.scores["amount"] for p in report.trend]
    assert amount_scores == sorted(amount_scores) and report.trend[-1].drifted["amount"]
    # drifted columns first
    flags = [c.drift.drifted for c in report.columns]
    assert flags == sorted(flags, reverse=True) and flags[0]
    assert {c.column for c in report.columns} == set(COLUMNS)

    amount = report.column("amount").distribution
    assert amount is not None and amount.kind == "histogram" and amount.current_above > 0
    widths = np.diff(amount.edges)
    # densities on the same bins: each side's area is its share of values drawn (all of them)
    assert float(np.dot(amount.reference, widths)) == pytest.approx(1.0)
    assert float(np.dot(amount.current, widths)) == pytest.approx(1.0)
    region = report.column("region").distribution
    assert region is not None and region.kind == "bars"
    assert dict(zip(region.labels, region.new, strict=True))["west"] is True
    assert dict(zip(region.labels, region.reference, strict=True))["west"] == 0.0
    assert sum(region.current) == pytest.approx(1.0) and sum(region.reference) == pytest.approx(1)
    prior = report.column("prior").distribution
    assert prior is not None and prior.labels == ["0", "1", "2", "3", "4"]

    page = out.read_text()
    assert page == report.html()  # the page is a pure function of the report
    for column in COLUMNS:  # a plot per feature, reference vs current
        _svg(page, f"reference vs current distribution of {column}".replace("<", "&lt;")
             .replace(">", "&gt;"))
    trend = _svg(page, "p-value of amount across runs" if report.column(
        "amount").drift.method in ("ks", "chisquare", "z") else
        f"{report.column('amount').drift.method} of amount across runs")
    assert trend.count("<circle") == 3
    assert _svg(page, "share of drifted columns across runs").count("<circle") == 3
    table = page[page.index('id="statistics"'):]
    table = table[:table.index("<h2", 10)]
    for header in ("column", "kind", "method", "statistic", "value", "p-value", "threshold",
                   "drifted", "bound", "PSI"):
        assert f"<th>{header}</th>" in table
    assert table.count("<tr") == len(COLUMNS) + 1
    # self-contained: nothing fetched, nothing run
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert MonitorReport.model_validate_json(report.to_json()) == report


PLAN = """\
rules:
  - name: amount-drift
    metric: drift.column.amount.drifted
    op: ">="
    threshold: 1
    severity: critical
    cooldown: 1h
    action: retrain
  - name: any-value
    metric: drift.column.*.value
    op: ">="
    threshold: 0
    severity: info
    cooldown: 1s
sinks: []
"""


def test_report_shows_the_run_alerts(report_ws: mw.Workspace) -> None:
    report_ws.set_monitoring_plan("claims", PLAN)
    ids = _shifted_runs(report_ws)
    report = report_ws.monitor_report("claims/1")
    mine = [a for a in report.alerts if a.rule == "amount-drift"]
    # the amount drift fired once (shift 10) and is held back by the cool-down since
    assert [a.status for a in mine] == ["suppressed"] and mine[0].action == "retrain"
    assert all(a.monitor_run_id == ids[-1] for a in report.alerts)
    assert {a.metric for a in report.alerts if a.rule == "any-value"} == {
        f"drift.column.{c}.value" for c in COLUMNS}
    assert {a.id for a in report_ws.alerts("claims", limit=20)} == {
        a.id for a in report.recent_alerts}
    page = report.html()
    alerts_section = page[page.index('id="alerts"'):page.index('id="statistics"')]
    assert "amount-drift" in alerts_section and "suppressed (retrain)" in alerts_section
    assert "drift.column.&lt;script&gt;alert(1)&lt;/script&gt;.value" in alerts_section
    assert EVIL not in page
    # an earlier run's report shows its own alerts only; the first run has no trend yet
    older = report_ws.monitor_report("claims/1", run_id=ids[0])
    assert {a.monitor_run_id for a in older.alerts} == {ids[0]} and len(older.trend) == 1
    assert "Only one run" in older.html()
    fired = report_ws.monitor_report("claims/1", run_id=ids[1])
    assert [a.status for a in fired.alerts if a.rule == "amount-drift"] == ["firing"]


def test_report_bad_input(tmp_path: Path) -> None:
    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        _register(ws)
        with pytest.raises(mw.NotFound, match="claims/1 has no monitor runs"):
            ws.monitor_report("claims/1")
        with pytest.raises(mw.NotFound):
            ws.monitor_report("nobody/1")
        first = ws.monitor("claims/1").run(data=_frame(300, seed=3))
        assert ws.monitor_report("claims/1", run_id=first.id[:10]).run_id == first.id
        with pytest.raises(mw.NotFound, match="no monitor run 'feedbeef' of models:/claims/1"):
            ws.monitor_report("claims/1", run_id="feedbeef")
        with pytest.raises(mw.NotFound):
            ws.monitor_report("claims/1", run_id="../etc")
        for runs in (0, -1, 1_001, True):
            with pytest.raises(mw.InvalidInput) as info:
                ws.monitor_report("claims/1", runs=runs)
            assert info.value.field == "runs"
        with pytest.raises(mw.InvalidInput, match="no folder"):
            ws.monitor_report("claims/1", out=tmp_path / "missing" / "x.html")
        # a report of version 1's run is not found under another version's URI
        _register(ws)  # version 2, no runs
        with pytest.raises(mw.NotFound, match="no monitor run"):
            ws.monitor_report("claims/2", run_id=first.id)
        # a JSON path gets the data, not the page
        target = ws.monitor_report("claims/1", out=tmp_path / "r.json")
        assert MonitorReport.model_validate_json((tmp_path / "r.json").read_text()) == target
        # a reference profiled again after the run: its cells may not match the run's counts
        store_reference(ws.ctx, "claims/1", _frame(500, seed=11), source="training")
        replaced = ws.monitor_report("claims/1")
        assert replaced.reference_replaced and replaced.reference_rows == 3_000  # as compared
        assert all(c.distribution is None and c.note and "profiled again" in c.note
                   for c in replaced.columns)
        assert "profiled again after this run" in replaced.html()


def test_report_with_many_columns_stays_usable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"f{i:03d}" for i in range(120)]
    train = pd.DataFrame(rng.normal(0, 1, (1_200, 120)), columns=names)
    y = (train["f000"] + train["f001"] > 0).astype(int)
    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        with ws.start_run(experiment="wide") as run:
            run.use_dataset(ws.log_dataset(train, name="wide"), role="train")
            ws.register_model("wide", model=LogisticRegression(max_iter=500).fit(train, y),
                              run=run, input_example=train.head())
        current = pd.DataFrame(rng.normal(0, 1, (800, 120)), columns=names)
        current[names[:20]] += 1.5  # 20 columns shift
        ws.monitor("wide/1").run(data=current)
        report = ws.monitor_report("wide/1")
    page = report.html()
    assert page.count("<details") == 121
    assert len(re.findall(r"<details [^>]* open>", page)) == 8  # only the first drifted open
    first = [c.column for c in report.columns[:20]]
    assert sorted(first) == names[:20] and all(c.drift.drifted for c in report.columns[:20])
    assert len(page) < 3_000_000


def test_quality_performance_and_segments(tmp_path: Path) -> None:
    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        _register(ws)
        ws.validate("claims/1", data=_frame(800, seed=9), label="y", n_bootstrap=10,
                    explain_sample=0)
        monitor = ws.monitor("claims/1", segments=["region"])
        for i, shift in enumerate([0, 20, 40]):
            current = _frame(900, shift=shift, seed=20 + i, new_region=shift == 40)
            monitor.run(data=current, label="y")
        report = ws.monitor_report("claims/1")
    assert report.quality is not None and report.performance is not None
    assert {s.value for s in report.segments} == {"north", "south", "east", "west"}
    assert "accuracy" in report.performance.metrics and report.performance.baseline
    assert report.psi["amount"] > report.psi[EVIL]
    # the trend keeps run-level figures and a few per segment value, not every column's
    last = report.trend[-1].metrics
    assert {"quality.error_rate", "performance.accuracy", "performance.estimated.accuracy",
            "segment.region=west.positive_rate", "segment.region=north.drift.share",
            "drift.label.score"} <= set(last)
    assert not [k for k in last if k.startswith(("quality.column.", "drift.column."))
                or ".drift.column." in k or ".quality.column." in k]
    page = report.html()
    quality = page[page.index('id="quality"'):page.index('id="performance"')]
    assert "unseen_category" in quality and "west" in quality
    performance = page[page.index('id="performance"'):page.index('id="segments"')]
    for header in ("real (labels)", "estimated", "baseline (validation)", "drop (real)"):
        assert f"<th>{header}</th>" in performance
    assert _svg(performance, "accuracy across runs").count("<circle") >= 3
    assert report.label_drift is not None and report.label_drift.status == "scored"
    labels = page[page.index('id="label-drift"'):page.index('id="segments"')]
    assert ("not drifted" if not report.label_drift.drifted else "drifted") in labels
    assert f"{report.label_drift.method} " in labels
    assert _svg(labels, "label drift score across runs").count("<circle") == 3
    segments = page[page.index('id="segments"'):page.index('id="columns"')]
    assert "region = west" in segments and "region = north" in segments
    assert _svg(segments, "positive_rate per region value").count("<circle") >= 9
    assert EVIL not in page
    assert MonitorReport.model_validate_json(report.to_json()) == report


def test_monitor_report_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "ws"
    with mw.Workspace(folder, user="alice") as ws:
        _register(ws)
        ids = _shifted_runs(ws)
    runner = CliRunner()
    base = ["-w", str(folder), "--user", "alice", "monitor", "report"]
    out = tmp_path / "drift.html"
    done = runner.invoke(app, [*base, "claims/1", "--out", str(out), "--runs", "2"])
    assert done.exit_code == 0, done.stderr
    assert str(out) in done.stdout and "columns drifted" in done.stdout
    assert 'aria-label="share of drifted columns across runs"' in out.read_text()

    as_json = runner.invoke(app, [*base, "models:/claims/1", "--json", "--run", ids[1][:12]])
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["run_id"] == ids[1] and [p["run_id"] for p in data["trend"]] == ids[:2]
    assert MonitorReport.model_validate(data).column("amount").distribution is not None

    monkeypatch.chdir(tmp_path)
    default = runner.invoke(app, [*base, "claims@production"])
    assert default.exit_code == 1 and "production" in default.stderr
    default = runner.invoke(app, [*base, "claims/1"])
    assert default.exit_code == 0 and (tmp_path / "claims-v1-drift.html").is_file()
    unknown = runner.invoke(app, [*base, "claims/1", "--run", "abcdef12"])
    assert unknown.exit_code == 1 and "no monitor run 'abcdef12'" in unknown.stderr
    bad = runner.invoke(app, [*base, "claims/1", "--runs", "0"])
    assert bad.exit_code == 1 and "runs" in bad.stderr
