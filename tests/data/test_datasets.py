"""Dataset versions: content-addressed, deduplicated, profiled, on both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelworks as mw


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame({
        "claim_id": [f"C{i:05d}" for i in range(n)],
        "amount": rng.lognormal(5, 1, n),
        "region": rng.choice(["north", "south", "east"], n),
        "prior": rng.poisson(1.0, n),
    })


def test_log_dataset_records_version(workspace: mw.Workspace, frame: pd.DataFrame) -> None:
    dv = workspace.log_dataset(frame, name="claims")
    assert (dv.name, dv.version, dv.row_count) == ("claims", 1, 300)
    assert list(dv.columns) == ["claim_id", "amount", "region", "prior"]
    assert (dv.columns["amount"], dv.columns["prior"]) == ("float64", "int64")
    assert len(dv.content_hash) == 64 and len(dv.artifact_sha256) == 64
    cols = {c["name"]: c for c in dv.profile["columns"]}
    assert cols["claim_id"]["is_identifier"] is True
    assert cols["claim_id"]["categorical"]["counts"] == {}  # identifiers keep no values
    assert sum(cols["amount"]["numeric"]["bin_counts"]) == 300
    assert cols["region"]["categorical"]["other_count"] == 0
    back = workspace.load_dataset("claims")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    events = workspace.audit_log(action="dataset_version.logged", limit=None)
    assert events[0].payload["content_hash"] == dv.content_hash


def test_identical_content_returns_existing_version(
    workspace: mw.Workspace, frame: pd.DataFrame, tmp_path: Path
) -> None:
    first = workspace.log_dataset(frame, name="claims")
    path = tmp_path / "claims.parquet"
    frame.to_parquet(path, index=False)
    again = workspace.log_dataset(path, name="claims")
    assert again == first
    changed = frame.assign(amount=frame["amount"] * 2)
    second = workspace.log_dataset(changed, name="claims")
    assert second.version == 2 and second.content_hash != first.content_hash
    reordered = workspace.log_dataset(frame[list(reversed(frame.columns))], name="claims")
    assert reordered.version == 3  # column order is part of the content
    assert [v.version for v in workspace.dataset_versions("claims")] == [1, 2, 3]
    assert workspace.get_dataset("claims").version == 3
    assert workspace.get_dataset("claims", 1) == first
    listed = {d.name: (d.latest_version, d.version_count) for d in workspace.list_datasets()}
    assert listed == {"claims": (3, 3)}


def test_csv_input(workspace: mw.Workspace, frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    frame.to_csv(path, index=False)
    dv = workspace.log_dataset(path, name="from-csv")
    assert dv.row_count == 300 and dv.source == str(path)


def test_bad_dataset_input(workspace: mw.Workspace, tmp_path: Path) -> None:
    with pytest.raises(mw.NotFound, match="no data file"):
        workspace.log_dataset(tmp_path / "missing.csv", name="x")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(mw.InvalidInput, match=r"\.csv or \.parquet"):
        workspace.log_dataset(tmp_path / "data.json", name="x")
    with pytest.raises(mw.InvalidInput) as info:
        workspace.log_dataset([1, 2, 3], name="x")  # type: ignore[arg-type]
    assert info.value.field == "data"
    with pytest.raises(mw.InvalidInput) as info:
        workspace.log_dataset(pd.DataFrame({"a": [1]}), name="../evil")
    assert info.value.field == "name"
    with pytest.raises(mw.NotFound, match="no dataset named"):
        workspace.get_dataset("nope")
    workspace.log_dataset(pd.DataFrame({"a": [1]}), name="one")
    with pytest.raises(mw.NotFound, match="no version 7"):
        workspace.get_dataset("one", 7)


def test_corrupt_snapshot_is_refused(workspace: mw.Workspace, frame: pd.DataFrame) -> None:
    dv = workspace.log_dataset(frame, name="claims")
    path = Path(workspace.artifacts._path(dv.artifact_sha256))
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(mw.IntegrityError, match=dv.artifact_sha256):
        workspace.load_dataset(dv)
