"""Tasks: Glance's ``tasks`` and ``task_info`` tables (interoperable import runs as a task).

Revision ID: 0002_tasks
Revises: 0001_initial
Create Date: 2026-11-23

Written out in full rather than imported from ``models.py``: a migration must keep
describing the schema of its own revision when the models move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# duplicates: every revision repeats Alembic's header and the column types (TS, MYSQL) on
# purpose: a revision is frozen history and imports no live code, so a later change cannot
# alter what an old revision created.
revision = "0002_tasks"
down_revision = "0001_initial"
branch_labels = None
depends_on = None
# Rolling upgrades (db/migrate.py): only adds, so code of the release before runs on it.
phase = "expand"

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS),
        sa.Column("deleted_at", TS),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("image_id", sa.String(36)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("user_id", sa.String(64)),
        **MYSQL,
    )
    for column in ("type", "status", "owner", "deleted", "updated_at", "image_id"):
        op.create_index(f"ix_tasks_{column}", "tasks", [column])

    op.create_table(
        "task_info",
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("input", sa.Text()),
        sa.Column("result", sa.Text()),
        sa.Column("message", sa.Text()),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("task_info")
    op.drop_table("tasks")
