"""The model registry: registered models, their versions, aliases and alias history."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.sql.expression import false

from ._types import UTCDateTime, metadata

__all__ = ["alias_history", "model_aliases", "model_tags", "model_versions", "registered_models"]

registered_models = Table(
    "mw_registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("owner", String(256), nullable=False),
    Column("risk_tier", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    # the model inventory a model-risk team keeps (governance fills and reads these)
    Column("business_purpose", Text, nullable=True),
    Column("lifecycle_status", String(32), nullable=False, server_default="development"),
    Column("validation_status", String(32), nullable=False, server_default="not_validated"),
    Column("next_review_date", Date, nullable=True),
    Column("vendor", Boolean, nullable=False, server_default=false()),
)

model_tags = Table(
    "mw_model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_mw_model_tags_key_value", "key", "value"),
)

model_versions = Table(
    "mw_model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32), ForeignKey("mw_runs.id"), nullable=True),
    Column("artifact_sha256", String(64), nullable=False),
    Column("artifact_size", BigInteger, nullable=False),
    Column("format", String(32), nullable=False),
    Column("library", String(64), nullable=True),
    Column("library_version", String(64), nullable=True),
    Column("allow_pickle", Boolean, nullable=False),
    Column("signature", JSON, nullable=True),
    Column("input_example", JSON, nullable=True),
    Column("description", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("model_id", "version"),
)

model_aliases = Table(
    "mw_model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

# Every move of an alias: which version held it from when (version NULL = alias deleted).
alias_history = Table(
    "mw_alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("reason", Text, nullable=True),
    Column("forced", Boolean, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Index("ix_mw_alias_history_model_alias", "model_id", "alias", "id"),
)
