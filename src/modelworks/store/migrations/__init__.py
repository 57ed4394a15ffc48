"""Alembic migrations of the metadata schema (version table ``mw_alembic_version``)."""
