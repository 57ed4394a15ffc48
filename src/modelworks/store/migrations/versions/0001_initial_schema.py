"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 19:10:24.582124
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import modelworks.store.tables._types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "mw_audit_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("ts", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=256), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_mw_audit_events")),
    )
    op.create_table(
        "mw_audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_audit_head")),
    )
    op.create_table(
        "mw_datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("created_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_mw_datasets_name")),
    )
    op.create_table(
        "mw_experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("created_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_mw_experiments_name")),
    )
    op.create_table(
        "mw_lineage_edges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("child_type", sa.String(length=64), nullable=False),
        sa.Column("child_id", sa.String(length=256), nullable=False),
        sa.Column("parent_type", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=256), nullable=False),
        sa.Column("relation", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_lineage_edges")),
        sa.UniqueConstraint(
            "child_type",
            "child_id",
            "parent_type",
            "parent_id",
            "relation",
            name="uq_mw_lineage_edge",
        ),
    )
    with op.batch_alter_table("mw_lineage_edges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mw_lineage_edges_parent", ["parent_type", "parent_id"], unique=False
        )

    op.create_table(
        "mw_metrics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_metrics")),
    )
    with op.batch_alter_table("mw_metrics", schema=None) as batch_op:
        batch_op.create_index("ix_mw_metrics_run_key_step", ["run_id", "key", "step"], unique=False)

    op.create_table(
        "mw_role_bindings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("granted_by", sa.String(length=256), nullable=False),
        sa.Column("granted_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_role_bindings")),
        sa.UniqueConstraint("principal", "role", name=op.f("uq_mw_role_bindings_principal_role")),
    )
    op.create_table(
        "mw_workspace",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_workspace")),
    )
    op.create_table(
        "mw_dataset_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["mw_datasets.id"],
            name=op.f("fk_mw_dataset_versions_dataset_id_mw_datasets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_dataset_versions")),
        sa.UniqueConstraint(
            "dataset_id",
            "content_hash",
            name=op.f("uq_mw_dataset_versions_dataset_id_content_hash"),
        ),
        sa.UniqueConstraint(
            "dataset_id", "version", name=op.f("uq_mw_dataset_versions_dataset_id_version")
        ),
    )
    op.create_table(
        "mw_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_time", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("end_time", modelworks.store.tables._types.UTCDateTime(), nullable=True),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("git_diff_hash", sa.String(length=64), nullable=True),
        sa.Column("python_version", sa.String(length=32), nullable=False),
        sa.Column("packages_hash", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("metric_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["mw_experiments.id"],
            name=op.f("fk_mw_runs_experiment_id_mw_experiments"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["mw_runs.id"], name=op.f("fk_mw_runs_parent_id_mw_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_runs")),
    )
    with op.batch_alter_table("mw_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mw_runs_experiment_start", ["experiment_id", "start_time"], unique=False
        )
        batch_op.create_index("ix_mw_runs_parent", ["parent_id"], unique=False)

    op.create_table(
        "mw_latest_metrics",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["mw_runs.id"], name=op.f("fk_mw_latest_metrics_run_id_mw_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_mw_latest_metrics")),
    )
    with op.batch_alter_table("mw_latest_metrics", schema=None) as batch_op:
        batch_op.create_index("ix_mw_latest_metrics_key_value", ["key", "value"], unique=False)

    op.create_table(
        "mw_params",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["mw_runs.id"], name=op.f("fk_mw_params_run_id_mw_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_mw_params")),
    )
    with op.batch_alter_table("mw_params", schema=None) as batch_op:
        batch_op.create_index("ix_mw_params_key_value", ["key", "value"], unique=False)

    op.create_table(
        "mw_run_artifacts",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["mw_runs.id"], name=op.f("fk_mw_run_artifacts_run_id_mw_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "path", name=op.f("pk_mw_run_artifacts")),
    )
    op.create_table(
        "mw_tags",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["mw_runs.id"], name=op.f("fk_mw_tags_run_id_mw_runs")),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_mw_tags")),
    )


def downgrade() -> None:

    op.drop_table("mw_tags")
    op.drop_table("mw_run_artifacts")
    with op.batch_alter_table("mw_params", schema=None) as batch_op:
        batch_op.drop_index("ix_mw_params_key_value")

    op.drop_table("mw_params")
    with op.batch_alter_table("mw_latest_metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_mw_latest_metrics_key_value")

    op.drop_table("mw_latest_metrics")
    with op.batch_alter_table("mw_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_mw_runs_parent")
        batch_op.drop_index("ix_mw_runs_experiment_start")

    op.drop_table("mw_runs")
    op.drop_table("mw_dataset_versions")
    op.drop_table("mw_workspace")
    op.drop_table("mw_role_bindings")
    with op.batch_alter_table("mw_metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_mw_metrics_run_key_step")

    op.drop_table("mw_metrics")
    with op.batch_alter_table("mw_lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_mw_lineage_edges_parent")

    op.drop_table("mw_lineage_edges")
    op.drop_table("mw_experiments")
    op.drop_table("mw_datasets")
    op.drop_table("mw_audit_head")
    op.drop_table("mw_audit_events")
