"""A governed ``claims`` model in production behind an endpoint, for retraining tests
(fixtures imported by the test modules that use them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import modelworks as mw
from modelworks.config import Settings
from modelworks.quickstart.claims_data import LABEL_COLUMN, generate_claims

from . import _trainers

TRAINER = f"{_trainers.__name__}:fit"
WORKER = "modelworks-worker"
VALIDATOR = "vera"

# No approval needed: a candidate that passes goes straight to a canary.
LOW_RISK = """\
name: auto-low
applies_to: {risk_tiers: [low]}
rules:
  - evidence: [validation]
  - metric: roc_auc
    min: 0.6
"""
# A validator must approve each version.
HIGH_RISK = """\
name: gated-high
applies_to: {risk_tiers: [high]}
rules:
  - evidence: [held_out_validation]
  - approvals: {count: 1, role: validator}
"""


def as_user(ws: mw.Workspace, user: str) -> mw.Workspace:
    """The same workspace, acting as another identity."""
    return mw.Workspace(ws.location.db_url, artifacts=ws.location.artifacts, user=user,
                        settings=ws.settings)


def governed(location: str, artifacts: str, journal: Path, *, tier: str = "low",
             rows: int = 900) -> mw.Workspace:
    """``claims`` v1 trained on ``claims-train`` v1 by alice, validated, in production
    (approved by the validator for the high tier), served by the endpoint ``claims``."""
    ws = mw.Workspace(location, artifacts=artifacts, user="alice",
                      settings=Settings(prediction_log_dir=str(journal)))
    data = generate_claims(rows, seed=1)
    train, holdout = data.iloc[: rows * 3 // 4], data.iloc[rows * 3 // 4:]
    with ws.start_run(experiment="claims") as run:
        run.use_dataset(ws.log_dataset(train, name="claims-train"), role="train")
        version = ws.register_model("claims", model=_trainers.fit(train), run=run,
                                    input_example=train[_trainers.FEATURES], risk_tier=tier)
    ws.validate(version.uri, data=holdout, label=LABEL_COLUMN, n_bootstrap=20,
                explain_sample=50)
    ws.apply_policy(LOW_RISK if tier == "low" else HIGH_RISK)
    ws.grant_role(VALIDATOR, "validator")
    if tier == "high":
        with as_user(ws, VALIDATOR) as validator:
            validator.approve(version.uri, reason="reviewed the report")
    ws.set_alias("claims", "production", 1, reason="first release")
    ws.create_deployment("claims", model="claims@production")
    return ws


@pytest.fixture
def make_governed(db_location: tuple[str, str], tmp_path: Path
                  ) -> Iterator[Callable[..., mw.Workspace]]:
    """``governed`` over SQLite and PostgreSQL."""
    yield from _factory(*db_location, tmp_path / "journal")


@pytest.fixture
def make_local(tmp_path: Path) -> Iterator[Callable[..., mw.Workspace]]:
    """``governed`` in an SQLite folder, for what does not depend on the backend."""
    yield from _factory(str(tmp_path / "ws"), str(tmp_path / "ws" / "artifacts"),
                        tmp_path / "journal")


def _factory(location: str, artifacts: str, journal: Path
             ) -> Iterator[Callable[..., mw.Workspace]]:
    opened: list[mw.Workspace] = []

    def make(*, tier: str = "low") -> mw.Workspace:
        ws = governed(location, artifacts, journal, tier=tier)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()
