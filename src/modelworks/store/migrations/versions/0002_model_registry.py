"""model registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:59:26.736154
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import modelworks.store.tables._types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "mw_registered_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("risk_tier", sa.String(length=16), nullable=False),
        sa.Column("created_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_registered_models")),
        sa.UniqueConstraint("name", name=op.f("uq_mw_registered_models_name")),
    )
    op.create_table(
        "mw_alias_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("ts", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["mw_registered_models.id"],
            name=op.f("fk_mw_alias_history_model_id_mw_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_alias_history")),
    )
    with op.batch_alter_table("mw_alias_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mw_alias_history_model_alias", ["model_id", "alias", "id"], unique=False
        )

    op.create_table(
        "mw_model_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["mw_registered_models.id"],
            name=op.f("fk_mw_model_aliases_model_id_mw_registered_models"),
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_mw_model_aliases")),
    )
    op.create_table(
        "mw_model_tags",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["mw_registered_models.id"],
            name=op.f("fk_mw_model_tags_model_id_mw_registered_models"),
        ),
        sa.PrimaryKeyConstraint("model_id", "key", name=op.f("pk_mw_model_tags")),
    )
    with op.batch_alter_table("mw_model_tags", schema=None) as batch_op:
        batch_op.create_index("ix_mw_model_tags_key_value", ["key", "value"], unique=False)

    op.create_table(
        "mw_model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("artifact_size", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("library", sa.String(length=64), nullable=True),
        sa.Column("library_version", sa.String(length=64), nullable=True),
        sa.Column("allow_pickle", sa.Boolean(), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=True),
        sa.Column("input_example", sa.JSON(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", modelworks.store.tables._types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["mw_registered_models.id"],
            name=op.f("fk_mw_model_versions_model_id_mw_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["mw_runs.id"], name=op.f("fk_mw_model_versions_run_id_mw_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mw_model_versions")),
        sa.UniqueConstraint(
            "model_id", "version", name=op.f("uq_mw_model_versions_model_id_version")
        ),
    )


def downgrade() -> None:

    op.drop_table("mw_model_versions")
    with op.batch_alter_table("mw_model_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_mw_model_tags_key_value")

    op.drop_table("mw_model_tags")
    op.drop_table("mw_model_aliases")
    with op.batch_alter_table("mw_alias_history", schema=None) as batch_op:
        batch_op.drop_index("ix_mw_alias_history_model_alias")

    op.drop_table("mw_alias_history")
    op.drop_table("mw_registered_models")
