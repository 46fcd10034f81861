"""Initial schema: images and their properties, tags, members and locations (Glance's names).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22

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
revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None
# Rolling upgrades (db/migrate.py): only adds, so code of the release before runs on it.
phase = "expand"

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS),
        sa.Column("deleted_at", TS),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


def _image_table(table: str, *items: sa.Column | sa.Constraint) -> None:
    """A table of rows that belong to an image (properties, tags, members, locations)."""
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), nullable=False),
        *items,
        *_timestamps(),
        **MYSQL,
    )


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("size", sa.BigInteger()),
        sa.Column("virtual_size", sa.BigInteger()),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False, server_default="shared"),
        sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("os_hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("checksum", sa.String(32)),
        sa.Column("os_hash_algo", sa.String(64)),
        sa.Column("os_hash_value", sa.String(128)),
        sa.Column("owner", sa.String(255)),
        sa.Column("disk_format", sa.String(20)),
        sa.Column("container_format", sa.String(20)),
        sa.Column("min_disk", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("min_ram", sa.Integer(), nullable=False, server_default="0"),
        *_timestamps(),
        **MYSQL,
    )
    for column in (
        "status",
        "owner",
        "visibility",
        "created_at",
        "updated_at",
        "checksum",
        "os_hash_value",
        "deleted",
        "name",
    ):
        op.create_index(f"ix_images_{column}", "images", [column])

    _image_table(
        "image_properties",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text()),
        sa.UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
    )
    op.create_index("ix_image_properties_name", "image_properties", ["name"])
    op.create_index("ix_image_properties_deleted", "image_properties", ["deleted"])

    _image_table(
        "image_tags",
        sa.Column("value", sa.String(255), nullable=False),
    )
    op.create_index("ix_image_tags_image_id_tag_value", "image_tags", ["image_id", "value"])
    op.create_index("ix_image_tags_value", "image_tags", ["value"])

    _image_table(
        "image_members",
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("can_share", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.UniqueConstraint(
            "image_id", "member", "deleted_at", name="image_members_image_id_member_deleted_at_key"
        ),
    )
    op.create_index("ix_image_members_member", "image_members", ["member"])
    op.create_index("ix_image_members_image_id_member", "image_members", ["image_id", "member"])
    op.create_index("ix_image_members_deleted", "image_members", ["deleted"])

    _image_table(
        "image_locations",
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("meta_data", sa.Text()),
        sa.Column("status", sa.String(30), nullable=False, server_default="active"),
    )
    op.create_index("ix_image_locations_image_id", "image_locations", ["image_id"])
    op.create_index("ix_image_locations_deleted", "image_locations", ["deleted"])


def downgrade() -> None:
    for table in ("image_locations", "image_members", "image_tags", "image_properties", "images"):
        op.drop_table(table)
