"""The metadata database: one SQLAlchemy engine for SQLite or PostgreSQL.

Dialect quirks live here and nowhere else: SQLite pragmas and write locking, upserts,
and the lock that keeps two processes from migrating a new database at once.
"""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..config import redact
from ..errors import InvalidInput, StoreUnavailable

__all__ = ["VERSION_TABLE", "Database", "share_engine"]

T = TypeVar("T")
VERSION_TABLE = "mw_alembic_version"
_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6D77_6D69  # "mwmi": advisory lock key for schema migrations
_SQLITE_BUSY_MS = 60_000


class Database:
    """An engine plus the two transaction kinds services use: ``read()`` and ``write()``."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise InvalidInput(f"not a database URL: {redact(url)!r}", field="workspace") from exc
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            db_path = parsed.database or ""
            if not db_path or db_path == ":memory:":
                raise InvalidInput("an SQLite workspace needs a file path", field="workspace")
            self.sqlite_path: Path | None = Path(db_path)
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                url,
                connect_args={"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False},
                pool_size=pool_size,
            )
            _configure_sqlite(self.engine)
        elif self.dialect == "postgresql":
            self.sqlite_path = None
            self.engine = create_engine(url, pool_size=pool_size, pool_pre_ping=True)
        else:
            raise InvalidInput(
                f"unsupported database {self.dialect!r}: use SQLite or PostgreSQL",
                field="workspace",
            )
        # The same pool, with a flag the SQLite begin hook reads to take the write lock up
        # front (BEGIN IMMEDIATE) instead of failing on a read-to-write upgrade.
        self._write_engine = self.engine.execution_options(mw_write=True)
        self._upserts: dict[tuple[Any, ...], Any] = {}
        self._inserts: dict[tuple[Any, ...], str] = {}
        # Lookups of immutable, committed facts (an experiment's id by name) that services
        # may memoise for this engine's lifetime; cleared whenever a write is retried.
        self.memo: dict[Any, Any] = {}

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        try:
            with self._write_engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on both backends)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    def write_retrying(self, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, again from scratch on a uniqueness clash.

        Two writers creating the same row (an experiment on first use, a dataset's next
        version) race on PostgreSQL; the loser's transaction rolls back whole and reruns,
        then finds the winner's row.
        """
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except SAIntegrityError:
                self.memo.clear()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _unavailable(self, exc: SQLAlchemyError) -> StoreUnavailable:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return StoreUnavailable(f"database {redact(self.url)} is unavailable: {reason}")

    def dispose(self) -> None:
        self.engine.dispose()

    # -- dialect helpers ----------------------------------------------------------------

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        keys: Sequence[str],
        update: Sequence[str],
        where_newer: str | None = None,
    ) -> None:
        """Insert rows; on a key clash update ``update`` columns (only if ``where_newer`` grew)."""
        if not rows:
            return
        cache_key = (table.name, tuple(keys), tuple(update), where_newer)
        stmt = self._upserts.get(cache_key)
        if stmt is None:  # building the construct costs more than running it: keep it
            from sqlalchemy.dialects import postgresql, sqlite

            dml: Any = sqlite if self.dialect == "sqlite" else postgresql
            ins = dml.insert(table)
            where = None
            if where_newer is not None:
                where = ins.excluded[where_newer] >= table.c[where_newer]
            stmt = ins.on_conflict_do_update(
                index_elements=list(keys),
                set_={col: ins.excluded[col] for col in update},
                where=where,
            )
            self._upserts[cache_key] = stmt
        conn.execute(stmt, list(rows))

    def insert_rows(
        self, conn: Connection, table: Table, columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """Bulk-insert plain tuples with the driver's executemany.

        SQLAlchemy processes parameters row by row (~5 us each); for metric points, which
        need no type conversion, that was a fifth of the cost of logging them.
        """
        if not rows:
            return
        key = (table.name, tuple(columns))
        sql = self._inserts.get(key)
        if sql is None:
            quote = self.engine.dialect.identifier_preparer.quote
            mark = "?" if self.dialect == "sqlite" else "%s"
            sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                   f"VALUES ({', '.join(mark for _ in columns)})")
            self._inserts[key] = sql
        conn.exec_driver_sql(sql, list(rows))

    def lock_for_update(self, conn: Connection, table: Table, key: Any | list[Any]) -> None:
        """Serialise writers on one row (or on a list of rows' ids, locked in id order so
        two writers never deadlock); SQLite's write transaction already holds the lock."""
        if self.dialect != "postgresql":
            return
        if isinstance(key, list):
            keys = sorted(key)
            for start in range(0, len(keys), 500):
                conn.execute(select(table.c.id).where(table.c.id.in_(keys[start:start + 500]))
                             .order_by(table.c.id).with_for_update())
        else:
            conn.execute(table.select().where(table.c.id == key).with_for_update())

    # -- schema -------------------------------------------------------------------------

    def is_empty(self) -> bool:
        with self.read() as conn:
            return not inspect(conn).has_table(VERSION_TABLE)

    def current_revision(self) -> str | None:
        # One plain SELECT: Alembic's MigrationContext costs milliseconds on every open.
        with self.read() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        if len(rows) > 1:
            raise StoreUnavailable(f"{VERSION_TABLE} holds {len(rows)} revisions, expected one")
        return str(rows[0][0]) if rows else None

    @staticmethod
    def head_revision() -> str:
        return _head_revision()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate to ``revision`` under a cross-process lock; a no-op when already there."""
        from alembic import command

        with self._migration_lock() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()

    def ensure_schema(self, *, auto_upgrade: bool) -> None:
        """Create a new database's schema; upgrade an old one only if ``auto_upgrade``.

        SQLite workspaces migrate themselves on open; a PostgreSQL team store is created
        on first open of an empty database and otherwise upgraded by ``db upgrade``.
        """
        try:
            current = self.current_revision()
        except StoreUnavailable:
            raise
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        head = self.head_revision()
        if current == head:
            return
        if current is None or auto_upgrade:
            self.upgrade()
            return
        raise StoreUnavailable(
            f"database {redact(self.url)} is at schema revision {current}, this modelworks "
            f"needs {head}: run `modelworks db upgrade`"
        )

    @contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    yield conn
                finally:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                    conn.commit()
            return
        assert self.sqlite_path is not None
        lock_path = self.sqlite_path.with_name(self.sqlite_path.name + ".migrate.lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A fresh engine without pooling: migrations must not share a pooled connection
            # whose transaction state the begin hook manages.
            engine = create_engine(self.url, poolclass=NullPool,
                                   connect_args={"timeout": _SQLITE_BUSY_MS / 1000})
            _configure_sqlite(engine)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                engine.dispose()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@functools.cache
def _head_revision() -> str:
    """The newest migration shipped with this package (read once: it cannot change)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def share_engine(engine: Engine) -> None:
    """Make an engine another library opened on our database (Optuna's study storage) behave
    like ours: on SQLite the same pragmas, and every transaction takes the write lock up front
    (BEGIN IMMEDIATE), so concurrent processes wait out the busy timeout instead of failing
    when a read turns into a write. PostgreSQL needs nothing."""
    if engine.dialect.name != "sqlite":
        return
    _configure_sqlite(engine)
    engine.update_execution_options(mw_write=True)
    engine.dispose()  # connections opened before the hooks were added would skip them


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so we can emit BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL: a crash or power loss may drop the last commits, never corrupts.
        cur.execute("PRAGMA synchronous=NORMAL")
        # A 32 MiB page cache per connection (default 2 MiB): searches over large run tables
        # hit the same index pages again and again.
        cur.execute("PRAGMA cache_size=-32768")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("mw_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
