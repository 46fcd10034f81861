"""The data API: the one interface to image metadata, declared once in ``OPERATIONS``.

Each operation is one row below: its name, its arguments after the caller's context, its
result, whether it only reads, and its special cases. Everything else is derived from it:

* ``glance_service.db.database_api.DatabaseAPI`` implements every row (SQLAlchemy directly; the
  registry uses it, and so does the API when ``[DEFAULT] data_api = database``);
  ``tests/unit/db/test_data_api_declared.py`` checks that each row has a method with the
  same arguments;
* ``glance_service.registry.client.RegistryClient`` gets one forwarding method per row, made
  once at import (``Operation.define``): the same call over ``POST /rpc`` to glance-registry
  (the default for ``glance-api``, which then holds no database credentials);
* ``glance_service.registry.server`` accepts exactly these commands, with these arguments.

Adding an operation: one row here, and its method in ``db/`` (api.py, tasks.py, metadefs.py
or scrub.py).

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
import __future__

import re
from collections.abc import Callable
from typing import Any, Protocol

Image = dict[str, Any]
Member = dict[str, Any]

# What an operation does to the data. READ: changes nothing, so RegistryClient sends it again
# (once) when the connection broke after the request went out (a kept-alive connection the
# registry dropped as it restarted). WRITE: sent again only when nothing reached the registry
# (connection refused), never after it may have run. Neither is sent again after a timeout.
READ = "read"
WRITE = "write"


class Operation:
    """One call of the data API. ``params`` are the arguments after ``ctx`` in Python syntax
    (annotations are documentation; defaults are literals); ``result`` the result's type.
    ``admin``: the implementation refuses other callers with ``Forbidden`` (a test checks it).
    ``optional``: a data API may lack it; callers look it up with ``getattr(data, name,
    None)`` and have a fallback (both DatabaseAPI and RegistryClient have it)."""

    __slots__ = ("name", "params", "result", "kind", "admin", "optional", "names", "required", "accepts")

    def __init__(
        self, name: str, params: str, result: str, kind: str, admin: bool = False, optional: bool = False
    ):
        if kind not in (READ, WRITE):
            raise ValueError(f"{name}: kind must be READ or WRITE")
        self.name, self.params, self.result, self.kind = name, params, result, kind
        self.admin, self.optional = admin, optional
        self.names: tuple[str, ...] = ()
        stub = self.define("pass")
        self.names = stub.__code__.co_varnames[2 : stub.__code__.co_argcount]
        self.required = frozenset(self.names[: len(self.names) - len(stub.__defaults__ or ())])
        self.accepts = frozenset(self.names)

    def define(self, body: str, namespace: dict | None = None) -> Callable:
        """A function ``name(self, ctx, <params>) -> result`` running ``body``, compiled once
        (callers do this at import, never per call). In ``body``, ``{name}`` is the operation's
        name, ``{kwargs}`` a dict display of its arguments in declared order (the registry's
        wire format), ``{resend}`` whether it is a READ."""
        kwargs = "{" + ", ".join(f"{n!r}: {n}" for n in self.names) + "}"
        code = body.format(name=repr(self.name), kwargs=kwargs, resend=self.kind == READ)
        params = f", {self.params}" if self.params else ""
        source = f"def {self.name}(self, ctx{params}) -> {self.result}:\n    {code}\n"
        scope: dict[str, Any] = {}
        # Our own declaration, compiled at import; annotations stay strings (never evaluated).
        flags = __future__.annotations.compiler_flag
        exec(
            compile(source, f"<data API {self.name}>", "exec", flags, dont_inherit=True),
            namespace or {},
            scope,
        )
        return scope[self.name]

    def check(self, kwargs: dict) -> str | None:
        """What is wrong with ``kwargs`` as this operation's arguments, or None."""
        missing = self.required - kwargs.keys()
        if missing:
            return f"missing a required argument: {min(missing)!r}"
        unknown = kwargs.keys() - self.accepts
        if unknown:
            return f"got an unexpected keyword argument {min(unknown)!r}"
        return None


# The special cases of the registry hop, each handled in one place:
# * resending: READ rows are sent again once when the connection broke after the request went
#   out; any row once when nothing was sent (refused); none after registry_client_timeout
#   (``RegistryClient._call``);
# * glance-api's own service token (calls without a user token, keystone flavor): a 401 renews
#   it once (``RegistryClient._call``);
# * errors cross by class name and are raised again as that class (``exceptions.by_name``;
#   ``MethodNotAllowed`` and ``RangeNotSatisfiable`` take extra arguments: ``registry.client.
#   _rebuild``); a failing database is 503 ``ServiceUnavailable``, anything unexpected 500
#   (``registry.server``);
# * identity never travels in the body: glance-api signs it (``registry.identity``) or sends
#   the token; the registry builds the context from the headers;
# * ``optional`` and ``admin`` rows: see ``Operation``; admin checks are the implementation's,
#   so they hold in direct mode too;
# * one registry address (``registry_host``): failover between registries is the load
#   balancer's (the virtual IP of the HA deployment), not the client's.
#
# The operations, one a row: ``name(arguments after ctx) -> result``, then ``read`` or
# ``write`` and the special cases ``admin``/``optional`` (see ``Operation``). A row may go on
# over indented lines; ``#`` lines are the operations' documentation.
DECLARED = """
# -- images ------------------------------------------------------------------------------------
# Insert; ``values`` may carry ``id`` (``Duplicate`` if taken, even by a deleted image),
# ``properties`` (dict), ``tags`` (list). Defaults: status queued, visibility shared,
# protected/os_hidden False, min_disk/min_ram 0.
image_create(values: Image) -> Image                                                    write
# ``ImageNotFound`` if missing, deleted or not visible; ids not 36 characters long are not found.
image_get(image_id: str, include_deleted: bool = False) -> Image                        read
# Visible images matching ``filters`` (module docstring), sorted, from ``marker``.
image_get_all(filters: dict | None = None, marker: str | None = None, limit: int | None = None,
              sort_keys: list[str] | None = None, sort_dirs: list[str] | None = None
              ) -> list[Image]                                                          read
# ``properties`` are upserted (with ``purge_props`` the others removed); ``tags`` replace the
# set; ``from_state``: only if the status still is that (one UPDATE ... WHERE), else
# ``ImageStatusConflict``. ``updated_at`` always moves.
image_update(image_id: str, values: Image, purge_props: bool = False,
             from_state: str | None = None) -> Image                                    write
# Soft-delete with properties, tags, members, locations; returns the record just before.
image_destroy(image_id: str) -> Image                                                   write
# The end of an upload in one transaction and one registry call: the location and ``values``
# (status active, size, hashes) if still ``from_state``. OPTIONAL: the upload falls back to
# image_location_add + image_update where a data API lacks it.
image_activate(image_id: str, url: str, metadata: dict | None, values: dict,
               from_state: str = 'saving') -> dict                                      write optional
# -- tags (create: no-op if present; delete: ``TagNotFound`` if absent) ----------------------
image_tag_create(image_id: str, tag: str) -> None                                       write
image_tag_delete(image_id: str, tag: str) -> None                                       write
# -- locations (delete: ``status`` deleted or pending_delete) --------------------------------
image_location_add(image_id: str, url: str, metadata: dict | None = None,
                   status: str = 'active') -> dict                                      write
image_location_update(image_id: str, location_id: int, values: dict) -> dict            write
image_location_delete(image_id: str, location_id: int, status: str = 'deleted') -> None write
# -- members (the API layer enforces who may call what; create: pending, ``Duplicate``) -------
image_member_create(image_id: str, member: str) -> Member                               write
image_member_update(image_id: str, member: str, status: str) -> Member                  write
image_member_delete(image_id: str, member: str) -> None                                 write
# The owner (and admins) see all rows, a member only its own. Member record: {"image_id",
# "member", "status", "can_share", "created_at", "updated_at", "deleted"}.
image_member_find(image_id: str, member: str | None = None) -> list[Member]             read
# -- quotas: bytes of the owner's live images times their live locations; ``Forbidden``
# unless the caller is that project or an admin.
image_storage_usage(owner: str) -> int                                                  read
# Unified limits (images/unified_limits.py), counted as upstream Glance counts them, for the
# owner's live images: {"image_size_total": bytes (size times live locations; killed, deleted,
# pending_delete images hold none), "image_stage_total": bytes (uploading or importing images,
# and others still copying: os_glance_importing_to_stores set), "image_count_total": images not
# killed/deleted/pending_delete, "image_count_uploading": saving, uploading, importing or
# copying images}. ``Forbidden`` unless the caller is that project or an admin.
image_quota_usage(owner: str) -> dict                                                   read
# -- tasks (db/task_records.py; visible to the owner's project and admins) ---------------------------
task_create(values: dict) -> dict                                                       write
task_get(task_id: str) -> dict                                                          read
task_get_all(filters: dict | None = None, marker: str | None = None, limit: int | None = None,
             sort_key: str = 'created_at', sort_dir: str = 'desc') -> list[dict]        read
# Atomically from ``from_status`` when given, else ``Conflict``.
task_update(task_id: str, values: dict, from_status: str | None = None) -> dict         write
task_get_by_image(image_id: str) -> list[dict]                                          read
# The import lock: set only if absent (``Duplicate``); remove only if still ``value``.
image_set_property_atomic(image_id: str, name: str, value: str) -> None                 write
image_delete_property_atomic(image_id: str, name: str, value: str) -> None              write
# -- maintenance: non-deleted images in ``status`` (uploads cut by a crash) -------------------
image_get_by_status(status: str, updated_before: str | None = None) -> list[Image]      read admin
# Cheap health probe (database reachable): the healthchecks' call.
ping() -> dict                                                                          read
# -- delayed delete and the scrubber (db/scrub.py: the life of a delayed delete) --------------
image_pending_delete(image_id: str) -> Image                                            write
image_restore(image_id: str) -> Image                                                   write admin
image_scrub_list(deleted_before: str | None = None, limit: int = 100) -> list[dict]     read admin
image_scrub_claim(image_id: str) -> bool                                                write admin
image_scrub_location_done(image_id: str, location_id: int) -> bool                      write admin
image_scrub_release(image_id: str) -> bool                                              write admin
# -- metadata definitions (db/metadefs.py; records described there) ---------------------------
metadef_namespace_get_all(filters: dict | None = None, marker: str | None = None,
                          limit: int | None = None, sort_key: str = 'created_at',
                          sort_dir: str = 'desc') -> list[dict]                         read
metadef_namespace_get(namespace: str) -> dict                                           read
metadef_namespace_create(values: dict) -> dict                                          write
metadef_namespace_update(namespace: str, values: dict) -> dict                          write
metadef_namespace_delete(namespace: str) -> None                                        write
metadef_resource_type_get_all() -> list[dict]                                           read
metadef_association_create(namespace: str, values: dict) -> dict                        write
metadef_association_delete(namespace: str, name: str) -> None                           write
# ``kind``: property, object or tag; delete without ``name``: every item of ``kind``.
metadef_item_create(namespace: str, kind: str, values: dict) -> dict                    write
metadef_item_update(namespace: str, kind: str, name: str, values: dict) -> dict         write
metadef_item_delete(namespace: str, kind: str, name: str | None = None) -> None         write
metadef_tags_set(namespace: str, names: list[str], append: bool = False) -> list[dict]  write
"""

_ROW = re.compile(r"(\w+)\((.*)\)\s*->\s*(\S+)\s+(read|write)((?:\s+(?:admin|optional))*)")


def _declare(table: str) -> dict[str, Operation]:
    rows: list[str] = []
    for line in table.splitlines():
        if line.startswith((" ", "\t")) and rows:
            rows[-1] += " " + line.strip()
        elif line.strip() and not line.startswith("#"):
            rows.append(line.strip())
    operations = {}
    for row in rows:
        match = _ROW.fullmatch(re.sub(r"\s+", " ", row))
        if match is None:
            raise ValueError(f"Not an operation: {row}")
        name, params, result, kind, flags = match.groups()
        params = re.sub(r"\s*,\s*", ", ", params).strip(" ,")
        operations[name] = Operation(name, params, result, kind, "admin" in flags, "optional" in flags)
    return operations


OPERATIONS: dict[str, Operation] = _declare(DECLARED)


class DataAPI(Protocol):
    """What the API layer holds: an object with a method for each of ``OPERATIONS``
    (``DatabaseAPI`` or ``RegistryClient``)."""
