"""Indexes for the image list: its default order, the member check, the children of a page.

Revision ID: 0004_listing_indexes
Revises: 0003_metadefs
Create Date: 2026-12-06

``ix_images_listing`` (deleted, os_hidden, created_at, id) matches the default listing's
equalities and its order (created_at desc, id desc): a first page, or a page after a marker
(a range on (created_at, id)), reads 25 index entries instead of scanning and sorting every
live image. ``ix_image_members_image_id_member_deleted``: with only (image_id, member) SQLite
picks the one-column ``deleted`` index for the per-image membership check of a listing and
scans every live membership for each shared image it meets. ``(image_id, deleted)`` on
properties and locations, for the same reason: SQLite read a page's children by scanning every
live property and location (140 ms for 25 images with 100,000 images).
"""

from __future__ import annotations

from alembic import op

revision = "0004_listing_indexes"
down_revision = "0003_metadefs"
branch_labels = None
depends_on = None
# Rolling upgrades (db/migrate.py): only adds indexes, so code of the release before runs on it.
phase = "expand"


def upgrade() -> None:
    op.create_index("ix_images_listing", "images", ["deleted", "os_hidden", "created_at", "id"])
    op.create_index(
        "ix_image_members_image_id_member_deleted", "image_members", ["image_id", "member", "deleted"]
    )
    op.create_index("ix_image_properties_image_id_deleted", "image_properties", ["image_id", "deleted"])
    op.create_index("ix_image_locations_image_id_deleted", "image_locations", ["image_id", "deleted"])


def downgrade() -> None:
    op.drop_index("ix_image_locations_image_id_deleted", table_name="image_locations")
    op.drop_index("ix_image_properties_image_id_deleted", table_name="image_properties")
    op.drop_index("ix_image_members_image_id_member_deleted", table_name="image_members")
    op.drop_index("ix_images_listing", table_name="images")
