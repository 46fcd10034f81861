"""SQLAlchemy models: Glance's table and column names, so operators recognise the schema.

The schema itself is created by the alembic migrations in ``migrations/``; these classes
describe it for queries. Every table soft-deletes (``deleted``/``deleted_at``) like Glance.
Timestamps are naive UTC; on MySQL/MariaDB they keep microseconds (``DATETIME(6)``) so that
``created_at`` orders images created within the same second.
"""

from __future__ import annotations

import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

# Microsecond timestamps on MySQL/MariaDB (their DATETIME drops fractions by default).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

MYSQL_TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


class Base(DeclarativeBase):
    pass


class _SoftDelete:
    created_at: Mapped[datetime.datetime] = mapped_column(Timestamp, nullable=False)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class _ImageRow(_SoftDelete):
    """A row that belongs to an image (a property, tag, member or location). ``sort_order``
    keeps these columns first, where the migrations put them."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, sort_order=-1)
    image_id: Mapped[str] = mapped_column(String(36), ForeignKey("images.id"), nullable=False, sort_order=-1)


class Image(_SoftDelete, Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_status", "status"),
        Index("ix_images_owner", "owner"),
        Index("ix_images_visibility", "visibility"),
        Index("ix_images_created_at", "created_at"),
        Index("ix_images_updated_at", "updated_at"),
        Index("ix_images_checksum", "checksum"),
        Index("ix_images_os_hash_value", "os_hash_value"),
        Index("ix_images_deleted", "deleted"),
        Index("ix_images_name", "name"),
        # The default listing order and its equalities (migration 0004).
        Index("ix_images_listing", "deleted", "os_hidden", "created_at", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    visibility: Mapped[str] = mapped_column(String(20), nullable=False, default="shared")
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    owner: Mapped[str | None] = mapped_column(String(255))
    disk_format: Mapped[str | None] = mapped_column(String(20))
    container_format: Mapped[str | None] = mapped_column(String(20))
    min_disk: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    properties: Mapped[list[ImageProperty]] = relationship(back_populates="image")
    tags: Mapped[list[ImageTag]] = relationship(back_populates="image")
    members: Mapped[list[ImageMember]] = relationship(back_populates="image")
    locations: Mapped[list[ImageLocation]] = relationship(back_populates="image")


class ImageProperty(_ImageRow, Base):
    __tablename__ = "image_properties"
    __table_args__ = (
        UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
        Index("ix_image_properties_name", "name"),
        Index("ix_image_properties_deleted", "deleted"),
        Index("ix_image_properties_image_id_deleted", "image_id", "deleted"),
        MYSQL_TABLE_ARGS,
    )

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str | None] = mapped_column(Text)

    image: Mapped[Image] = relationship(back_populates="properties")


class ImageTag(_ImageRow, Base):
    __tablename__ = "image_tags"
    __table_args__ = (
        Index("ix_image_tags_image_id_tag_value", "image_id", "value"),
        Index("ix_image_tags_value", "value"),
        MYSQL_TABLE_ARGS,
    )

    value: Mapped[str] = mapped_column(String(255), nullable=False)

    image: Mapped[Image] = relationship(back_populates="tags")


class ImageMember(_ImageRow, Base):
    __tablename__ = "image_members"
    __table_args__ = (
        # Glance's constraint: one live row per (image, member); deleted rows differ by deleted_at.
        UniqueConstraint(
            "image_id", "member", "deleted_at", name="image_members_image_id_member_deleted_at_key"
        ),
        Index("ix_image_members_member", "member"),
        Index("ix_image_members_image_id_member", "image_id", "member"),
        Index("ix_image_members_deleted", "deleted"),
        Index("ix_image_members_image_id_member_deleted", "image_id", "member", "deleted"),
        MYSQL_TABLE_ARGS,
    )

    member: Mapped[str] = mapped_column(String(255), nullable=False)
    can_share: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")

    image: Mapped[Image] = relationship(back_populates="members")


# duplicates: each model states its own table, Glance's index names and columns, so models
# look alike; the columns they share are in the mixins (_SoftDelete, _ImageRow).
class ImageLocation(_ImageRow, Base):
    __tablename__ = "image_locations"
    __table_args__ = (
        Index("ix_image_locations_image_id", "image_id"),
        Index("ix_image_locations_deleted", "deleted"),
        Index("ix_image_locations_image_id_deleted", "image_id", "deleted"),
        MYSQL_TABLE_ARGS,
    )

    value: Mapped[str] = mapped_column(Text, nullable=False)
    meta_data: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(30), nullable=False, default="active")

    image: Mapped[Image] = relationship(back_populates="locations")


# duplicates: each model states its own table, Glance's index names and columns, so models
# look alike; the columns they share are in the mixins (_SoftDelete, _ImageRow).
class Task(_SoftDelete, Base):
    """An asynchronous job (Glance's ``tasks``): interoperable imports run as ``api_image_import``."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_type", "type"),
        Index("ix_tasks_status", "status"),
        Index("ix_tasks_owner", "owner"),
        Index("ix_tasks_deleted", "deleted"),
        Index("ix_tasks_updated_at", "updated_at"),
        Index("ix_tasks_image_id", "image_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    image_id: Mapped[str | None] = mapped_column(String(36))
    request_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))

    info: Mapped[TaskInfo] = relationship(back_populates="task", uselist=False)


class TaskInfo(Base):
    """The bulky half of a task (Glance keeps input/result/message apart from the row it lists)."""

    __tablename__ = "task_info"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    task_id: Mapped[str] = mapped_column(String(36), ForeignKey("tasks.id"), primary_key=True)
    input: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)

    task: Mapped[Task] = relationship(back_populates="info")


# -- metadata definitions (metadefs) ---------------------------------------------------------
# Glance's metadef tables: no soft delete (rows are removed), names up to 80 characters.
class _Timestamps:
    created_at: Mapped[datetime.datetime] = mapped_column(Timestamp, nullable=False)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)


class _NamespaceItem(_Timestamps):
    """A named item of a namespace (a property, object or tag): one of a name per namespace."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, sort_order=-1)
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id"), nullable=False, sort_order=-1
    )
    name: Mapped[str] = mapped_column(String(80), nullable=False, sort_order=-1)

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        return (
            UniqueConstraint("namespace_id", "name", name=f"uq_{cls.__tablename__}_namespace_id_name"),
            MYSQL_TABLE_ARGS,
        )


class MetadefNamespace(_Timestamps, Base):
    __tablename__ = "metadef_namespaces"
    __table_args__ = (
        UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
        Index("ix_metadef_namespaces_owner", "owner"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(80), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(32), nullable=False, default="private")
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)


class MetadefResourceType(_Timestamps, Base):
    __tablename__ = "metadef_resource_types"
    __table_args__ = (
        UniqueConstraint("name", name="uq_metadef_resource_types_name"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class MetadefNamespaceResourceType(_Timestamps, Base):
    __tablename__ = "metadef_namespace_resource_types"
    __table_args__ = (
        Index("ix_metadef_ns_res_types_namespace_id", "namespace_id"),
        MYSQL_TABLE_ARGS,
    )

    resource_type_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_resource_types.id"), primary_key=True
    )
    namespace_id: Mapped[int] = mapped_column(Integer, ForeignKey("metadef_namespaces.id"), primary_key=True)
    properties_target: Mapped[str | None] = mapped_column(String(80))
    prefix: Mapped[str | None] = mapped_column(String(80))


class MetadefProperty(_NamespaceItem, Base):
    __tablename__ = "metadef_properties"
    json_schema: Mapped[str] = mapped_column(Text, nullable=False)


class MetadefObject(_NamespaceItem, Base):
    __tablename__ = "metadef_objects"
    description: Mapped[str | None] = mapped_column(Text)
    required: Mapped[str | None] = mapped_column(Text)
    json_schema: Mapped[str] = mapped_column(Text, nullable=False)


class MetadefTag(_NamespaceItem, Base):
    __tablename__ = "metadef_tags"
