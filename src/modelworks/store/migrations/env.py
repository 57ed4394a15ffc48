"""Alembic environment: runs on the connection that ``Database.upgrade`` hands in."""

from __future__ import annotations

from alembic import context

from modelworks.store.database import VERSION_TABLE
from modelworks.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - we never run alembic from its own CLI
    raise RuntimeError("run migrations through `modelworks db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
