"""Opening workspaces: locations, settings, identity, team stores and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import modelworks as mw
from modelworks.config import Settings, resolve_location


def test_default_folder_and_env_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELWORKS_WORKSPACE", raising=False)
    monkeypatch.setenv("MODELWORKS_USER", "carol")
    ws = mw.Workspace()
    assert ws.location.folder == tmp_path / ".modelworks"
    assert (tmp_path / ".modelworks" / "modelworks.db").is_file()
    assert ws.actor == "carol" and ws.admins == ["carol"]
    ws.close()
    monkeypatch.setenv("MODELWORKS_WORKSPACE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MODELWORKS_ARTIFACTS", str(tmp_path / "blobs"))
    ws = mw.Workspace(user="dave")  # the argument wins over MODELWORKS_USER
    assert ws.location.folder == tmp_path / "elsewhere"
    assert ws.artifacts.root == str(tmp_path / "blobs") and ws.actor == "dave"
    ws.close()


def test_sqlite_url_location(tmp_path: Path) -> None:
    loc = resolve_location(f"sqlite:///{tmp_path}/x.db", artifacts=None, settings=Settings())
    assert loc.artifacts == str(tmp_path / "artifacts")


def test_bad_locations_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(mw.InvalidInput) as info:
        mw.Workspace("mysql://root@localhost/db")
    assert info.value.field == "workspace"
    with pytest.raises(mw.InvalidInput) as info:
        resolve_location("postgresql://u@h/db", artifacts=None,
                         settings=Settings(artifacts=None))
    assert info.value.field == "artifacts"


def test_unreachable_database_is_clear_and_redacted(tmp_path: Path) -> None:
    with pytest.raises(mw.StoreUnavailable) as info:
        mw.Workspace("postgresql://bob:s3cret-pw@127.0.0.1:1/db", artifacts=str(tmp_path))
    message = str(info.value)
    assert "s3cret-pw" not in message and "***" in message and "unavailable" in message


def test_team_store_on_postgres_with_s3_artifacts(
    pg_schema_url: str, s3_server: dict[str, Any], tmp_path: Path
) -> None:
    import pandas as pd

    ws = mw.Workspace(pg_schema_url, artifacts=f"s3://mw-test/{tmp_path.name}",
                      storage_options=s3_server, user="erin")
    assert ws.db.dialect == "postgresql" and not ws.artifacts.is_local
    (tmp_path / "notes.txt").write_text("team store")
    dv = ws.log_dataset(pd.DataFrame({"a": [1, 2, 3]}), name="tiny")
    with ws.start_run(experiment="team") as run:
        run.log_artifact(tmp_path / "notes.txt")
        run.use_dataset(dv)
    rec = ws.get_run(run.id)
    assert ws.artifacts.get_bytes(rec.artifacts[0].sha256) == b"team store"
    assert ws.load_dataset("tiny")["a"].tolist() == [1, 2, 3]
    assert ws.verify_audit().ok
    ws.close()


def test_public_api_is_explicit_and_sorted() -> None:
    assert mw.__all__ == sorted(mw.__all__)
    for name in mw.__all__:
        assert hasattr(mw, name), name
