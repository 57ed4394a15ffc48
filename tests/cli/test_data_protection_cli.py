"""``modelworks datasets scan | pseudonymize | tag``, driven in-process on a SQLite workspace."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import modelworks as mw
from modelworks.cli.main import app

pytest.importorskip("presidio_analyzer")

runner = CliRunner()
SECRET = hashlib.sha256(b"cli test key").hexdigest()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER",
                 "MODELWORKS_PSEUDONYM_KEY", "MODELWORKS_PSEUDONYM_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    frame = pd.DataFrame({
        "email": [f"client{i}@example.com" for i in range(12)],
        "ip": [f"192.168.0.{i + 1}" for i in range(12)],
        "region": ["north", "south", "east"] * 4,
        "balance": [float(i) * 10.5 for i in range(12)],
    })
    with mw.Workspace(tmp_path / "ws", user="erin") as ws:
        ws.log_dataset(frame, name="clients")
    return tmp_path / "ws"


def cli(folder: Path, *args: str) -> Result:
    return runner.invoke(app, ["--workspace", str(folder), *args])


def as_json(folder: Path, *args: str) -> Any:
    result = cli(folder, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_scan_prints_findings(folder: Path) -> None:
    scan = as_json(folder, "datasets", "scan", "clients:1", "--sample-rows", "100")
    pattern = {(f["column"], f["entity_type"]) for f in scan["findings"]
               if f["detector"] == "pattern"}
    assert pattern == {("email", "EMAIL_ADDRESS"), ("ip", "IP_ADDRESS")}
    assert scan["rows_scanned"] == 12
    shown = cli(folder, "datasets", "scan", "clients", "--version", "1")
    assert shown.exit_code == 0, shown.output
    assert "EMAIL_ADDRESS" in shown.stdout and "tagged 'identifier': email, ip" in shown.stdout
    clash = cli(folder, "datasets", "scan", "clients:1", "--version", "2")
    assert clash.exit_code != 0 and "--version" in clash.output


def test_tag_and_untag(folder: Path) -> None:
    assert as_json(folder, "datasets", "tag", "clients", "--columns", "region,balance") == {
        "balance": ["sensitive"], "region": ["sensitive"]}
    assert as_json(folder, "datasets", "tag", "clients", "--columns", "balance",
                   "--remove") == {"region": ["sensitive"]}
    bad = cli(folder, "datasets", "tag", "clients", "--columns", "nope")
    assert bad.exit_code != 0 and "'nope'" in bad.output


def test_pseudonymize(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = cli(folder, "datasets", "pseudonymize", "clients", "--columns", "email")
    assert missing.exit_code != 0 and "MODELWORKS_PSEUDONYM_KEY" in missing.output
    monkeypatch.setenv("MODELWORKS_PSEUDONYM_KEY", f"main:{SECRET}")
    made = as_json(folder, "datasets", "pseudonymize", "clients", "--columns", "email,ip",
                   "--purpose", "support")
    assert (made["name"], made["version"]) == ("clients", 2)
    with mw.Workspace(folder, user="erin") as ws:
        tokens = ws.load_dataset("clients", 2)["email"]
    assert all(t.startswith("pt1.main.support.") for t in tokens)
    shown = cli(folder, "datasets", "pseudonymize", "clients:1", "--columns", "email")
    assert shown.exit_code == 0, shown.output
    assert "clients:3" in shown.stdout
    unknown = cli(folder, "datasets", "pseudonymize", "clients", "--columns", "email,nope")
    assert unknown.exit_code != 0 and "'nope'" in unknown.output
    assert SECRET not in unknown.output
