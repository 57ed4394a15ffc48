"""Schema migrations: empty database to head on both backends, without racing."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import modelworks as mw
from modelworks.store.database import VERSION_TABLE, Database
from modelworks.store.tables import metadata


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    url = request.getfixturevalue("pg_schema_url")
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_empty_database_migrates_to_head(backend: str, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    db = Database(_url(backend, tmp_path, request))
    assert db.is_empty() and db.current_revision() is None
    db.upgrade()
    assert db.current_revision() == Database.head_revision()
    with db.read() as conn:
        names = set(inspect(conn).get_table_names())
        # the migration builds exactly the tables the code declares
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata
        )
    assert VERSION_TABLE in names and "alembic_version" not in names
    assert {t for t in names if t != VERSION_TABLE} == set(metadata.tables)
    assert all(t.startswith("mw_") for t in names)
    assert diff == []
    db.upgrade()  # a second upgrade is a no-op
    db.dispose()


def _open(location: str, artifacts: str, user: str) -> str:
    ws = mw.Workspace(location, artifacts=artifacts, user=user)
    admins = ",".join(ws.admins)
    ws.close()
    return admins


def test_two_processes_opening_a_new_workspace_do_not_race(
    db_location: tuple[str, str]
) -> None:
    location, artifacts = db_location
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_open, [(location, artifacts, f"user{i}") for i in range(4)])
    # everyone opened it; exactly one became the creator and admin
    assert len(set(results)) == 1 and results[0].startswith("user")
    ws = mw.Workspace(location, artifacts=artifacts, user="later")
    assert ws.verify_audit().ok
    assert [e.action for e in ws.audit_log(limit=None)] == ["workspace.created"]
    ws.close()


def test_postgres_store_behind_head_asks_for_db_upgrade(
    pg_schema_url: str, tmp_path: Path
) -> None:
    ws = mw.Workspace(pg_schema_url, artifacts=str(tmp_path / "a"))
    with ws.db.write() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0000'"))
    ws.close()
    with pytest.raises(mw.StoreUnavailable, match="modelworks db upgrade"):
        mw.Workspace(pg_schema_url, artifacts=str(tmp_path / "a"))


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    ws = mw.Workspace(tmp_path / "ws", user="alice")
    with ws.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    ws.close()
