"""Metadata definitions: Glance's six ``metadef_*`` tables.

Revision ID: 0003_metadefs
Revises: 0002_tasks
Create Date: 2026-11-23

Written out in full rather than imported from ``models.py``: a migration must keep
describing the schema of its own revision when the models move on. Metadef rows are
removed outright (Glance gives these tables no soft-delete columns).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# duplicates: every revision repeats Alembic's header and the column types (TS, MYSQL) on
# purpose: a revision is frozen history and imports no live code, so a later change cannot
# alter what an old revision created.
revision = "0003_metadefs"
down_revision = "0002_tasks"
branch_labels = None
depends_on = None
# Rolling upgrades (db/migrate.py): only adds, so code of the release before runs on it.
phase = "expand"

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS)]


def _namespace_items(table: str, *columns: sa.Column) -> None:
    """A table of named items of a namespace (properties, objects, tags)."""
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("namespace_id", sa.Integer(), sa.ForeignKey("metadef_namespaces.id"), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        *columns,
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name=f"uq_{table}_namespace_id_name"),
        **MYSQL,
    )


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(80), nullable=False),
        sa.Column("display_name", sa.String(80)),
        sa.Column("description", sa.Text()),
        sa.Column("visibility", sa.String(32), nullable=False, server_default="private"),
        sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("owner", sa.String(255), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
        **MYSQL,
    )
    op.create_index("ix_metadef_namespaces_owner", "metadef_namespaces", ["owner"])

    op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false()),
        *_timestamps(),
        sa.UniqueConstraint("name", name="uq_metadef_resource_types_name"),
        **MYSQL,
    )

    op.create_table(
        "metadef_namespace_resource_types",
        sa.Column(
            "resource_type_id", sa.Integer(), sa.ForeignKey("metadef_resource_types.id"), primary_key=True
        ),
        sa.Column("namespace_id", sa.Integer(), sa.ForeignKey("metadef_namespaces.id"), primary_key=True),
        sa.Column("properties_target", sa.String(80)),
        sa.Column("prefix", sa.String(80)),
        *_timestamps(),
        **MYSQL,
    )
    op.create_index(
        "ix_metadef_ns_res_types_namespace_id", "metadef_namespace_resource_types", ["namespace_id"]
    )

    _namespace_items("metadef_properties", sa.Column("json_schema", sa.Text(), nullable=False))
    _namespace_items(
        "metadef_objects",
        sa.Column("description", sa.Text()),
        sa.Column("required", sa.Text()),
        sa.Column("json_schema", sa.Text(), nullable=False),
    )
    _namespace_items("metadef_tags")


def downgrade() -> None:
    for table in (
        "metadef_tags",
        "metadef_objects",
        "metadef_properties",
        "metadef_namespace_resource_types",
        "metadef_resource_types",
        "metadef_namespaces",
    ):
        op.drop_table(table)
