"""Error types of the service.

Every layer raises these. The HTTP status of each is its class's ``code``, set once on the
base classes below and inherited: the API (``glance_service.api.errors``) and the registry
RPC both answer with it, and the RPC client re-raises errors by class name. Add a subclass
rather than a new code.
"""


class GlanceServiceError(Exception):
    """Base class. ``message`` is safe to show to the API caller.

    A subclass states its default message and, on the base class of a status, its code as
    class arguments: ``class TagNotFound(NotFound, message="Tag not found."): ...``."""

    default_message = "An unknown error occurred."
    code = 500

    def __init_subclass__(cls, message: str | None = None, code: int | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if message is not None:
            cls.default_message = message
        if code is not None:
            cls.code = code

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


# -- 400 --------------------------------------------------------------------
# duplicates: one line per error class, so each status family (400, 404, ...) has the same
# shape as the others; the shared body is in GlanceServiceError.__init_subclass__.
class BadRequest(GlanceServiceError, code=400, message="The request is invalid."): ...


class InvalidFilter(BadRequest, message="Invalid filter."): ...


class InvalidSortKey(BadRequest, message="Invalid sort key."): ...


class InvalidMarker(BadRequest, message="Invalid marker: the image could not be found."): ...


class InvalidJsonPatch(BadRequest, message="Invalid JSON patch."): ...


class SchemaValidationError(BadRequest, message="The body does not match the schema."): ...


# -- 401 --------------------------------------------------------------------
class Unauthorized(GlanceServiceError, code=401, message="The request needs authentication."): ...


# -- 403 --------------------------------------------------------------------
class Forbidden(GlanceServiceError, code=403, message="You are not authorized to complete this action."): ...


class ReadOnlyProperty(Forbidden, message="Attribute is read-only."): ...


class ReservedProperty(Forbidden, message="Attribute is reserved."): ...


class ProtectedImageDelete(Forbidden, message="Image is protected and cannot be deleted."): ...


class InvalidImageStatusTransition(Forbidden, message="The image status does not allow this operation."):
    """An operation that the image's status does not allow and that upstream answers with 403
    (deactivate/reactivate from the wrong status, format changes after upload)."""


# -- 404 --------------------------------------------------------------------
# duplicates: one line per error class, so each status family (400, 404, ...) has the same
# shape as the others; the shared body is in GlanceServiceError.__init_subclass__.
class NotFound(GlanceServiceError, code=404, message="The resource could not be found."): ...


class ImageNotFound(NotFound, message="No image found."): ...


class MemberNotFound(NotFound, message="No member found."): ...


class TagNotFound(NotFound, message="Tag not found."): ...


class LocationNotFound(NotFound, message="Location not found."): ...


class TaskNotFound(NotFound, message="Task not found."): ...


# -- 405 --------------------------------------------------------------------
class MethodNotAllowed(GlanceServiceError, code=405, message="The method is not allowed for this resource."):
    def __init__(self, allowed: list[str], message: str | None = None):
        self.allowed = allowed
        super().__init__(message)


# -- 409 --------------------------------------------------------------------
class Conflict(
    GlanceServiceError, code=409, message="The request conflicts with the resource's current state."
): ...


class Duplicate(Conflict, message="The resource already exists."): ...


class ImageStatusConflict(Conflict, message="The image is not in a status that allows this operation."):
    """The image is not in the status the operation needs (e.g. upload to an active image),
    or an atomic status change lost a race (``image_update(..., from_state=...)``)."""


class InUseByStore(Conflict, message="The image data is in use in the store and cannot be deleted."):
    """The store refuses to delete image data that something outside the image service still
    uses (RBD: the snapshot has copy-on-write clones, as every Nova or Cinder boot from the
    image makes, or the image is open; glance_store's ``InUseByStore``/``HasSnapshot``). The
    image and the location stay as they were."""


# -- 410 --------------------------------------------------------------------
class Gone(GlanceServiceError, code=410, message="The resource is gone."): ...


# -- 413 --------------------------------------------------------------------
class RequestEntityTooLarge(GlanceServiceError, code=413, message="The request is too large."): ...


class ImageSizeLimitExceeded(RequestEntityTooLarge, message="The provided image is too large."): ...


class StorageQuotaFull(RequestEntityTooLarge, message="The storage quota is full."): ...


class LimitExceeded(RequestEntityTooLarge, message="A limit has been exceeded."): ...


class StorageFull(RequestEntityTooLarge, message="There is not enough disk space in the image store."): ...


# -- 415 --------------------------------------------------------------------
class UnsupportedMediaType(GlanceServiceError, code=415, message="Unsupported media type."):
    def __init__(self, message: str | None = None, accept_patch: str | None = None):
        self.accept_patch = accept_patch
        super().__init__(message)


class InvalidImageData(
    UnsupportedMediaType, message="Image data does not match the declared disk format."
): ...


# -- 416 --------------------------------------------------------------------
class RangeNotSatisfiable(GlanceServiceError, code=416, message="Requested range not satisfiable."):
    def __init__(self, size: int | None = None, message: str | None = None):
        self.size = size
        super().__init__(message)


# -- 503 --------------------------------------------------------------------
class ServiceUnavailable(GlanceServiceError, code=503, message="The service is temporarily unavailable."): ...


class RegistryUnavailable(ServiceUnavailable, message="The image registry is unavailable."): ...


class StoreUnavailable(ServiceUnavailable, message="The image store is unavailable."): ...


# -- another API node's answers (api/stage_proxy.py) ---------------------------------
class StageHostFailed(GlanceServiceError, code=502, message="Stage host is unavailable"):
    """The API node holding an image's staged data failed to answer (502)."""


class StageHostUnreachable(StageHostFailed):
    """The API node holding an image's staged data could not be reached (504)."""

    code = 504


class ProxiedError(GlanceServiceError):
    """The error answer of the API node a request was handed to: its status and message,
    and its request id (the one the client is given, as upstream)."""

    def __init__(self, code: int, message: str, request_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.headers = [("x-openstack-request-id", request_id)] if request_id else []


def by_name(name: str) -> type[GlanceServiceError]:
    """The exception class called ``name`` (used to re-raise errors that crossed the registry RPC)."""
    found = _registry().get(name)
    return found if found is not None else GlanceServiceError


def _registry() -> dict[str, type[GlanceServiceError]]:
    out: dict[str, type[GlanceServiceError]] = {}
    stack: list[type[GlanceServiceError]] = [GlanceServiceError]
    while stack:
        cls = stack.pop()
        out[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return out
