"""Model risk management: validation reports, policies, evaluations, approvals, model cards,
dataset column tags and personal-data findings."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ._types import UTCDateTime, metadata

__all__ = [
    "approvals",
    "dataset_column_tags",
    "model_card_fields",
    "pii_findings",
    "policies",
    "policy_evaluations",
    "validation_reports",
]

validation_reports = Table(
    "mw_validation_reports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("mw_model_versions.id"), nullable=False),
    Column("task", String(32), nullable=False),
    Column("label", String(256), nullable=False),
    Column("data_hash", String(64), nullable=False),
    Column("dataset_version_id", Integer, ForeignKey("mw_dataset_versions.id"), nullable=True),
    Column("rows", Integer, nullable=False),
    Column("sensitive_features", JSON, nullable=False),
    # headline figures the gate and the model card read without opening the artifacts
    Column("summary", JSON, nullable=False),
    Column("held_out", Boolean, nullable=False),
    Column("has_explanations", Boolean, nullable=False),
    Column("report_sha256", String(64), nullable=False),
    Column("html_sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_validation_reports_version", "model_version_id", "created_at"),
)

# A policy is immutable once applied: applying the same name again adds the next version.
policies = Table(
    "mw_policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("name", "version"),
)

policy_evaluations = Table(
    "mw_policy_evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("mw_model_versions.id"), nullable=False),
    Column("policy_id", Integer, ForeignKey("mw_policies.id"), nullable=True),
    Column("policy_sha256", String(64), nullable=True),
    Column("passed", Boolean, nullable=False),
    Column("outcomes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_policy_evaluations_version", "model_version_id", "created_at"),
)

# Approvals and rejections belong to a model version and survive policy changes.
approvals = Table(
    "mw_approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version_id", Integer, ForeignKey("mw_model_versions.id"), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("role", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_mw_approvals_version", "model_version_id", "id"),
)

# Fields only a person can write (intended use, limitations, ...); version 0 = every version.
model_card_fields = Table(
    "mw_model_card_fields",
    metadata,
    Column("model_id", Integer, ForeignKey("mw_registered_models.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

# Tags on a dataset's columns (e.g. "sensitive", "identifier"), for every version.
dataset_column_tags = Table(
    "mw_dataset_column_tags",
    metadata,
    Column("dataset_id", Integer, ForeignKey("mw_datasets.id"), primary_key=True),
    Column("column", String(256), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("set_at", UTCDateTime, nullable=False),
    Column("set_by", String(256), nullable=False),
)

pii_findings = Table(
    "mw_pii_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_version_id", Integer, ForeignKey("mw_dataset_versions.id"), nullable=False),
    Column("column", String(256), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("detector", String(32), nullable=False),
    Column("matches", Integer, nullable=False),
    Column("rows_scanned", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_mw_pii_findings_dataset_version", "dataset_version_id"),
)
