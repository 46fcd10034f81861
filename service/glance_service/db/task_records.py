"""Tasks over SQLAlchemy, and the atomic image-property lock the import tasks take.

``TaskDatabaseMixin`` gives ``DatabaseAPI`` the ``task_*`` methods of the data API and
``image_set_property_atomic``/``image_delete_property_atomic`` (Glance's names); the
registry exposes them like every other ``DataAPI`` method.

Task record (Glance's ``_task_format``: a plain dict, timestamps naive-UTC ISO strings)::

    {"id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "deleted_at",
     "deleted", "image_id", "request_id", "user_id",
     "input": dict | None, "result": dict | None, "message": str}

A task is visible to its owner's project and to admins (others get ``TaskNotFound``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db.image_rows import isotime, parse_time, update_children, utcnow, visible_row
from glance_service.db.models import ImageProperty, Task, TaskInfo

TASKS = Task.__table__
INFO = TaskInfo.__table__
PROPS = ImageProperty.__table__

TASK_STATUSES = frozenset({"pending", "processing", "success", "failure"})
_TASK_COLUMNS = ("type", "status", "owner", "expires_at", "image_id", "request_id", "user_id")
_INFO_COLUMNS = ("input", "result", "message")
TASK_SORT_KEYS = frozenset({"created_at", "updated_at", "id", "type", "status", "expires_at", "owner"})


class TaskDatabaseMixin:
    """Needs ``self.db`` (``db.session.Database``), as ``DatabaseAPI`` has."""

    # -- tasks ------------------------------------------------------------------------
    def task_create(self, ctx: RequestContext, values: dict) -> dict:
        values = dict(values)
        task_id = values.pop("id", None) or str(uuid.uuid4())
        row = _task_row(values)
        row.setdefault("status", "pending")
        row.setdefault("owner", ctx.owner)
        if not row.get("type") or not row.get("owner"):
            raise exceptions.BadRequest("A task needs a type and an owner.")
        now = utcnow()
        row.update(id=task_id, created_at=now, updated_at=now, deleted=False)
        info = _info_row(values)
        try:
            with self.db.writer() as s:
                s.execute(TASKS.insert().values(**row))
                s.execute(INFO.insert().values(task_id=task_id, **info))
                return _task_get(s, task_id)
        except IntegrityError as exc:
            raise exceptions.Duplicate(f"A task with identifier {task_id} already exists") from exc

    def task_get(self, ctx: RequestContext, task_id: str) -> dict:
        with self.db.reader() as s:
            task = _task_get(s, task_id)
        if not _visible(ctx, task):
            raise exceptions.TaskNotFound(f"Task with the given id {task_id} not found")
        return task

    # The arguments' types: db/interface.py.
    def task_get_all(
        self, ctx, filters=None, marker=None, limit=None, sort_key="created_at", sort_dir="desc"
    ) -> list[dict]:
        """Tasks visible to ``ctx``; ``filters``: ``status``, ``type``, ``image_id`` (equality)."""
        if sort_key not in TASK_SORT_KEYS or sort_dir not in ("asc", "desc"):
            raise exceptions.BadRequest(f"Invalid sort: {sort_key} {sort_dir}")
        query = sa.select(TASKS.c.id).where(TASKS.c.deleted == sa.false())
        for key, value in (filters or {}).items():
            if key not in ("status", "type", "image_id"):
                raise exceptions.BadRequest(f"Invalid task filter: {key}")
            query = query.where(TASKS.c[key] == value)
        if not ctx.is_admin:
            query = query.where(TASKS.c.owner == ctx.owner)
        column, tie = TASKS.c[sort_key], TASKS.c.id
        order = (column.asc(), tie.asc()) if sort_dir == "asc" else (column.desc(), tie.desc())
        with self.db.reader() as s:
            if marker is not None:
                mark = s.execute(sa.select(TASKS).where(TASKS.c.id == marker)).first()
                if mark is None or (not ctx.is_admin and mark.owner != ctx.owner):
                    raise exceptions.InvalidMarker(f"Invalid marker: no task found with ID {marker}")
                value = getattr(mark, sort_key)
                beyond = (column > value) if sort_dir == "asc" else (column < value)
                after = (tie > mark.id) if sort_dir == "asc" else (tie < mark.id)
                query = query.where(sa.or_(beyond, sa.and_(column == value, after)))
            query = query.order_by(*order)
            if limit is not None:
                query = query.limit(limit)
            ids = [r.id for r in s.execute(query)]
            return [_task_get(s, task_id) for task_id in ids]

    def task_update(
        self, ctx: RequestContext, task_id: str, values: dict, from_status: str | None = None
    ) -> dict:
        """Change a task; with ``from_status`` only if it still has that status (one atomic
        UPDATE), else ``Conflict``."""
        values = dict(values)
        row = _task_row(values)
        info = _info_row(values)
        row["updated_at"] = utcnow()
        with self.db.writer() as s:
            task = _task_get(s, task_id)
            if not _visible(ctx, task):
                raise exceptions.TaskNotFound(f"Task with the given id {task_id} not found")
            where = [TASKS.c.id == task_id, TASKS.c.deleted == sa.false()]
            if from_status is not None:
                where.append(TASKS.c.status == from_status)
            if not s.execute(TASKS.update().where(*where).values(**row)).rowcount:
                raise exceptions.Conflict(
                    f"Task {task_id} is {task['status']}, not {from_status}: the change was not made"
                )
            if info:
                s.execute(INFO.update().where(INFO.c.task_id == task_id).values(**info))
            return _task_get(s, task_id)

    def task_get_by_image(self, ctx: RequestContext, image_id: str) -> list[dict]:
        """The tasks of one image the caller may see, oldest first."""
        query = sa.select(TASKS.c.id).where(TASKS.c.image_id == image_id, TASKS.c.deleted == sa.false())
        if not ctx.is_admin:
            query = query.where(TASKS.c.owner == ctx.owner)
        with self.db.reader() as s:
            ids = [r.id for r in s.execute(query.order_by(TASKS.c.created_at, TASKS.c.id))]
            return [_task_get(s, task_id) for task_id in ids]

    # -- the import lock ------------------------------------------------------------------
    def image_set_property_atomic(self, ctx: RequestContext, image_id: str, name: str, value: str) -> None:
        """Create property ``name`` only if the image has no live one: ``Duplicate`` otherwise.
        The unique (image_id, name) pair makes the insert the arbiter between racers."""
        now = utcnow()
        try:
            with self.db.writer() as s:
                dead = (PROPS.c.name == name, PROPS.c.deleted == sa.true())
                revive = {"value": value, "deleted": False, "deleted_at": None, "updated_at": now}
                if not update_children(s, ctx, image_id, PROPS, *dead, **revive):
                    # duplicates: same shape as a pymysql.connect call in a molecule script only.
                    s.execute(
                        PROPS.insert().values(
                            image_id=image_id,
                            name=name,
                            value=value,
                            created_at=now,
                            updated_at=now,
                            deleted=False,
                        )
                    )
        except IntegrityError as exc:
            raise exceptions.Duplicate(f"Image {image_id} already has property {name}") from exc

    def image_delete_property_atomic(self, ctx: RequestContext, image_id: str, name: str, value: str) -> None:
        """Remove property ``name`` only if it still holds ``value``: ``NotFound`` otherwise."""
        now = utcnow()
        with self.db.writer() as s:
            visible_row(s, ctx, image_id)
            changed = s.execute(
                PROPS.update()
                .where(
                    PROPS.c.image_id == image_id,
                    PROPS.c.name == name,
                    PROPS.c.value == value,
                    PROPS.c.deleted == sa.false(),
                )
                .values(deleted=True, deleted_at=now, updated_at=now)
            ).rowcount
            if not changed:
                raise exceptions.NotFound(f"Image {image_id} has no property {name} = {value}")


def _visible(ctx: RequestContext, task: dict) -> bool:
    return ctx.is_admin or task["owner"] is None or task["owner"] == ctx.owner


def _task_row(values: dict) -> dict:
    unknown = set(values) - set(_TASK_COLUMNS) - set(_INFO_COLUMNS)
    if unknown:
        raise exceptions.BadRequest(f"Unknown task attribute(s): {', '.join(sorted(unknown))}")
    row = {k: values[k] for k in _TASK_COLUMNS if k in values}
    if "status" in row and row["status"] not in TASK_STATUSES:
        raise exceptions.BadRequest(f"Invalid task status {row['status']!r}")
    if "expires_at" in row:
        row["expires_at"] = parse_time(row["expires_at"])
    return row


def _info_row(values: dict) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for key in ("input", "result"):
        if key in values:
            info[key] = None if values[key] is None else json.dumps(values[key])
    if "message" in values:
        info["message"] = values["message"]
    return info


def _task_get(s, task_id: str) -> dict:
    row = s.execute(sa.select(TASKS).where(TASKS.c.id == task_id)).first() if task_id else None
    if row is None or row.deleted:
        raise exceptions.TaskNotFound(f"Task with the given id {task_id} not found")
    info = s.execute(sa.select(INFO).where(INFO.c.task_id == task_id)).first()
    task = {
        c: getattr(row, c) for c in ("id", "type", "status", "owner", "image_id", "request_id", "user_id")
    }
    for c in ("expires_at", "created_at", "updated_at", "deleted_at"):
        task[c] = isotime(getattr(row, c))
    task["deleted"] = bool(row.deleted)
    task["input"] = json.loads(info.input) if info is not None and info.input else None
    task["result"] = json.loads(info.result) if info is not None and info.result else None
    task["message"] = (info.message if info is not None else None) or ""
    return task
