"""The data API: the one interface to image metadata.

Two implementations share it, so the API layer never knows which it talks to:

* ``glance_service.db.api.DatabaseAPI``: SQLAlchemy directly (the registry uses it; the API
  may too when ``[DEFAULT] data_api = database``, for small deployments);
* ``glance_service.registry.client.RegistryClient``: the same calls over HTTP to
  ``glance-registry`` (the default for ``glance-api``, which then holds no database
  credentials).

Conventions (both implementations, identical results):

* Every call takes the caller's ``RequestContext`` first. Visibility is decided here,
  in one place: an image the context may not see raises ``ImageNotFound``, exactly like a
  missing or deleted one (admins see everything that is not deleted). Policy (may this
  caller *modify*?) is decided by the API layer, not here.
* Records are plain JSON-compatible dicts. Timestamps are naive-UTC ISO 8601 strings with
  microseconds (``"2026-11-22T10:04:05.123456"``); the HTTP layer formats them for output.
* An image record::

    {"id", "name", "status", "visibility", "protected", "os_hidden",
     "checksum", "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size",
     "disk_format", "container_format", "min_disk", "min_ram",
     "created_at", "updated_at", "deleted_at", "deleted",
     "properties": {name: value, ...},          # custom properties, values are strings
     "tags": [str, ...],                        # sorted
     "locations": [{"id": int, "url": str, "metadata": dict,
                    "status": "active"|"pending_delete"|"deleted"}, ...]}

  ``locations`` lists only non-deleted locations, in position order.
* Errors are ``glance_service.exceptions`` types (they cross the registry RPC by class name).

Normalised list filters (built and validated by ``glance_service.images.filters``; the
data API trusts them)::

    {
      "conditions": [(key, op, value), ...],  # op: eq neq in gt gte lt lte; AND-ed.
                                              # key: an images column (name, id, status,
                                              # container_format, disk_format, size, virtual_size,
                                              # min_disk, min_ram, owner, checksum, os_hash_value,
                                              # created_at, updated_at, protected) or, for any other
                                              # key, a custom property name (eq only).
                                              # "in" takes a list; timestamps are ISO strings.
      "tags": [str, ...],                     # image must carry all of them
      "visibility": "public"|"private"|"shared"|"community"|None,   # None = the default union
      "member_status": "accepted"|"pending"|"rejected"|"all",        # default "accepted"
      "os_hidden": bool,                      # default False: only non-hidden; True: only hidden
    }

Listing semantics (reference section 4.1) are implemented by ``image_get_all``: non-admins
see public + community + own + shared-where-member-with-member_status; without a
visibility filter community images are dropped unless owned by the caller; killed and
deleted images never appear. Sorting by ``sort_keys``/``sort_dirs`` with ``created_at``
and ``id`` appended as tie-breakers; ``marker`` is an image id the caller can see, else
``InvalidMarker``.
"""

from __future__ import annotations

from typing import Any, Protocol

from glance_service.context import RequestContext

Image = dict[str, Any]
Member = dict[str, Any]


class DataAPI(Protocol):
    # -- images ---------------------------------------------------------------
    def image_create(self, ctx: RequestContext, values: Image) -> Image:
        """Insert an image. ``values`` may carry ``id`` (``Duplicate`` if taken, even by a
        deleted image), ``properties`` (dict), ``tags`` (list). Defaults: status ``queued``,
        visibility ``shared``, protected/os_hidden False, min_disk/min_ram 0."""

    def image_get(self, ctx: RequestContext, image_id: str, include_deleted: bool = False) -> Image:
        """One image, or ``ImageNotFound`` (missing, deleted, or not visible to ``ctx``).
        Ids that are not 36 characters long are simply not found."""

    def image_get_all(
        self,
        ctx: RequestContext,
        filters: dict | None = None,
        marker: str | None = None,
        limit: int | None = None,
        sort_keys: list[str] | None = None,
        sort_dirs: list[str] | None = None,
    ) -> list[Image]:
        """Images visible to ``ctx`` matching ``filters`` (see module docstring)."""

    def image_update(
        self,
        ctx: RequestContext,
        image_id: str,
        values: Image,
        purge_props: bool = False,
        from_state: str | None = None,
    ) -> Image:
        """Change columns in ``values``; ``properties`` (dict) are upserted, and with
        ``purge_props`` every custom property not in ``values['properties']`` is removed;
        ``tags`` (list), when given, replace the tag set. ``from_state``: the update happens
        only if the image's status is still ``from_state`` (one atomic UPDATE ... WHERE),
        else ``ImageStatusConflict``. ``updated_at`` always moves. Visibility rules as
        ``image_get``."""

    def image_destroy(self, ctx: RequestContext, image_id: str) -> Image:
        """Soft-delete the image and its properties, tags, members and locations
        (``deleted=True``, ``deleted_at`` now, status ``deleted``). Returns the record as it
        was just before, so the caller can remove the data at its locations."""

    # -- tags -------------------------------------------------------------------
    def image_tag_create(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """Add a tag (no-op if present)."""

    def image_tag_delete(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """Remove a tag; ``TagNotFound`` if absent."""

    # -- locations ----------------------------------------------------------------
    def image_location_add(
        self,
        ctx: RequestContext,
        image_id: str,
        url: str,
        metadata: dict | None = None,
        status: str = "active",
    ) -> dict:
        """Append a location; returns it (with ``id``)."""

    def image_location_update(
        self, ctx: RequestContext, image_id: str, location_id: int, values: dict
    ) -> dict:
        """Change ``metadata`` and/or ``status`` of one location."""

    def image_location_delete(
        self, ctx: RequestContext, image_id: str, location_id: int, status: str = "deleted"
    ) -> None:
        """Soft-delete one location (``status`` ``deleted`` or ``pending_delete``)."""

    # -- members (sharing; the API layer enforces who may call what) --------------
    def image_member_create(self, ctx: RequestContext, image_id: str, member: str) -> Member:
        """New member in status ``pending``; ``Duplicate`` if already a member."""

    def image_member_update(self, ctx: RequestContext, image_id: str, member: str, status: str) -> Member: ...

    def image_member_delete(self, ctx: RequestContext, image_id: str, member: str) -> None: ...

    def image_member_find(
        self, ctx: RequestContext, image_id: str, member: str | None = None
    ) -> list[Member]:
        """Members of an image as the caller may see them: the owner (and admins) all rows,
        a member only its own row. Member record: ``{"image_id", "member", "status",
        "can_share", "created_at", "updated_at", "deleted"}``."""

    # -- quotas ---------------------------------------------------------------------
    def image_storage_usage(self, ctx: RequestContext, owner: str) -> int:
        """Bytes stored for ``owner``'s non-deleted images (``user_storage_quota``): each
        image's ``size`` times its live locations. ``Forbidden`` unless ``ctx`` is that
        project or an admin."""

    # -- tasks (records in db/tasks.py; visible to the owner's project and admins) ---------
    def task_create(self, ctx: RequestContext, values: dict) -> dict:
        """New task: ``type``, ``status`` (default pending), ``owner`` (default the caller's
        project), ``image_id``, ``request_id``, ``user_id``, ``expires_at``, ``input``/``result``
        (dicts), ``message``."""

    def task_get(self, ctx: RequestContext, task_id: str) -> dict:
        """One task, or ``TaskNotFound``."""

    def task_get_all(
        self,
        ctx: RequestContext,
        filters: dict | None = None,
        marker: str | None = None,
        limit: int | None = None,
        sort_key: str = "created_at",
        sort_dir: str = "desc",
    ) -> list[dict]:
        """Tasks visible to ``ctx``; ``filters`` on ``status``, ``type``, ``image_id``."""

    def task_update(
        self, ctx: RequestContext, task_id: str, values: dict, from_status: str | None = None
    ) -> dict:
        """Change a task (atomically from ``from_status`` when given, else ``Conflict``)."""

    def task_get_by_image(self, ctx: RequestContext, image_id: str) -> list[dict]:
        """The tasks of one image visible to ``ctx``, oldest first."""

    def image_set_property_atomic(self, ctx: RequestContext, image_id: str, name: str, value: str) -> None:
        """Set a property only if the image has none of that name (``Duplicate``): the import lock."""

    def image_delete_property_atomic(self, ctx: RequestContext, image_id: str, name: str, value: str) -> None:
        """Remove a property only if it still holds ``value`` (``NotFound``)."""

    # -- maintenance ----------------------------------------------------------------
    def image_get_by_status(
        self, ctx: RequestContext, status: str, updated_before: str | None = None
    ) -> list[Image]:
        """Admin only: every non-deleted image in ``status`` (optionally last updated before
        an ISO timestamp). Used to recover uploads cut by a crash."""

    def ping(self, ctx: RequestContext) -> dict:
        """Cheap health probe of the data layer (database reachable)."""

    # -- delayed delete and the scrubber (db/scrub.py) ----------------------------------------
    def image_pending_delete(self, ctx: RequestContext, image_id: str) -> Image:
        """Delayed delete: soft-delete the image in status ``pending_delete`` and its locations
        in status ``pending_delete`` (their data stays in the store). Returns the record as it
        was just before."""

    def image_restore(self, ctx: RequestContext, image_id: str) -> Image:
        """Admin only: ``pending_delete`` → ``active`` with its locations; ``ImageStatusConflict``
        in any other status (scrubbing has begun, or the image was never pending delete)."""

    def image_scrub_list(
        self, ctx: RequestContext, deleted_before: str | None = None, limit: int = 100
    ) -> list[dict]:
        """Admin only: images due for scrubbing, oldest first: ``[{"id", "status",
        "deleted_at", "locations": [location with status pending_delete, ...]}]``."""

    def image_scrub_claim(self, ctx: RequestContext, image_id: str) -> bool:
        """Admin only: atomically ``pending_delete`` → ``deleted``; False if another scrubber
        claimed it or it was restored."""

    def image_scrub_location_done(self, ctx: RequestContext, image_id: str, location_id: int) -> bool:
        """Admin only: a claimed image's location whose data is gone → ``deleted``."""

    def image_scrub_release(self, ctx: RequestContext, image_id: str) -> bool:
        """Admin only: a claimed image whose data the store kept (refused or failed) goes back
        to ``pending_delete``; False unless claimed with ``pending_delete`` locations left."""

    # -- metadata definitions (db/metadefs.py; records described there) ------------------------
    def metadef_namespace_get_all(
        self,
        ctx: RequestContext,
        filters: dict | None = None,
        marker: str | None = None,
        limit: int | None = None,
        sort_key: str = "created_at",
        sort_dir: str = "desc",
    ) -> list[dict]:
        """Namespaces visible to ``ctx`` (admin: all; others: public and their own);
        ``filters``: ``visibility``, ``resource_types`` (list: associated with any)."""

    def metadef_namespace_get(self, ctx: RequestContext, namespace: str) -> dict:
        """One namespace with its associations, properties, objects and tags; ``NotFound``."""

    def metadef_namespace_create(self, ctx: RequestContext, values: dict) -> dict:
        """``Duplicate`` if the name is taken; nested contents are created in one transaction."""

    def metadef_namespace_update(self, ctx: RequestContext, namespace: str, values: dict) -> dict: ...

    def metadef_namespace_delete(self, ctx: RequestContext, namespace: str) -> None:
        """With its contents; ``Forbidden`` if protected."""

    def metadef_resource_type_get_all(self, ctx: RequestContext) -> list[dict]: ...

    def metadef_association_create(self, ctx: RequestContext, namespace: str, values: dict) -> dict:
        """Associate a resource type (created if new); ``Duplicate`` if associated already."""

    def metadef_association_delete(self, ctx: RequestContext, namespace: str, name: str) -> None: ...

    def metadef_item_create(self, ctx: RequestContext, namespace: str, kind: str, values: dict) -> dict:
        """``kind``: ``property``, ``object`` or ``tag``."""

    def metadef_item_update(
        self, ctx: RequestContext, namespace: str, kind: str, name: str, values: dict
    ) -> dict: ...

    def metadef_item_delete(
        self, ctx: RequestContext, namespace: str, kind: str, name: str | None = None
    ) -> None:
        """One item, or every item of ``kind`` when ``name`` is None; ``Forbidden`` if protected."""

    def metadef_tags_set(
        self, ctx: RequestContext, namespace: str, names: list[str], append: bool = False
    ) -> list[dict]:
        """Replace the namespace's tags with ``names`` (or add them, with ``append``)."""
