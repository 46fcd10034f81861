"""Error types of the service.

Every layer raises these. The HTTP status of each is its class's ``code``, set once on the
base classes below and inherited: the API (``glance_service.api.errors``) and the registry
RPC both answer with it, and the RPC client re-raises errors by class name. Add a subclass
rather than a new code.
"""


class GlanceServiceError(Exception):
    """Base class. ``message`` is safe to show to the API caller."""

    default_message = "An unknown error occurred."
    code = 500

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


# -- 400 --------------------------------------------------------------------
class BadRequest(GlanceServiceError):
    default_message = "The request is invalid."
    code = 400


class InvalidFilter(BadRequest):
    default_message = "Invalid filter."


class InvalidSortKey(BadRequest):
    default_message = "Invalid sort key."


class InvalidMarker(BadRequest):
    default_message = "Invalid marker: the image could not be found."


class InvalidJsonPatch(BadRequest):
    default_message = "Invalid JSON patch."


class SchemaValidationError(BadRequest):
    default_message = "The body does not match the schema."


# -- 401 --------------------------------------------------------------------
class Unauthorized(GlanceServiceError):
    default_message = "The request needs authentication."
    code = 401


# -- 403 --------------------------------------------------------------------
class Forbidden(GlanceServiceError):
    default_message = "You are not authorized to complete this action."
    code = 403


class ReadOnlyProperty(Forbidden):
    default_message = "Attribute is read-only."


class ReservedProperty(Forbidden):
    default_message = "Attribute is reserved."


class ProtectedImageDelete(Forbidden):
    default_message = "Image is protected and cannot be deleted."


class InvalidImageStatusTransition(Forbidden):
    """An operation that the image's status does not allow and that upstream answers with 403
    (deactivate/reactivate from the wrong status, format changes after upload)."""

    default_message = "The image status does not allow this operation."


# -- 404 --------------------------------------------------------------------
class NotFound(GlanceServiceError):
    default_message = "The resource could not be found."
    code = 404


class ImageNotFound(NotFound):
    default_message = "No image found."


class MemberNotFound(NotFound):
    default_message = "No member found."


class TagNotFound(NotFound):
    default_message = "Tag not found."


class LocationNotFound(NotFound):
    default_message = "Location not found."


class TaskNotFound(NotFound):
    default_message = "Task not found."


# -- 405 --------------------------------------------------------------------
class MethodNotAllowed(GlanceServiceError):
    default_message = "The method is not allowed for this resource."
    code = 405

    def __init__(self, allowed: list[str], message: str | None = None):
        self.allowed = allowed
        super().__init__(message)


# -- 409 --------------------------------------------------------------------
class Conflict(GlanceServiceError):
    default_message = "The request conflicts with the resource's current state."
    code = 409


class Duplicate(Conflict):
    default_message = "The resource already exists."


class ImageStatusConflict(Conflict):
    """The image is not in the status the operation needs (e.g. upload to an active image),
    or an atomic status change lost a race (``image_update(..., from_state=...)``)."""

    default_message = "The image is not in a status that allows this operation."


class InUseByStore(Conflict):
    """The store refuses to delete image data that something outside the image service still
    uses (RBD: the snapshot has copy-on-write clones, as every Nova or Cinder boot from the
    image makes, or the image is open; glance_store's ``InUseByStore``/``HasSnapshot``). The
    image and the location stay as they were."""

    default_message = "The image data is in use in the store and cannot be deleted."


# -- 410 --------------------------------------------------------------------
class Gone(GlanceServiceError):
    default_message = "The resource is gone."
    code = 410


# -- 413 --------------------------------------------------------------------
class RequestEntityTooLarge(GlanceServiceError):
    default_message = "The request is too large."
    code = 413


class ImageSizeLimitExceeded(RequestEntityTooLarge):
    default_message = "The provided image is too large."


class StorageQuotaFull(RequestEntityTooLarge):
    default_message = "The storage quota is full."


class LimitExceeded(RequestEntityTooLarge):
    default_message = "A limit has been exceeded."


class StorageFull(RequestEntityTooLarge):
    default_message = "There is not enough disk space in the image store."


# -- 415 --------------------------------------------------------------------
class UnsupportedMediaType(GlanceServiceError):
    default_message = "Unsupported media type."
    code = 415

    def __init__(self, message: str | None = None, accept_patch: str | None = None):
        self.accept_patch = accept_patch
        super().__init__(message)


class InvalidImageData(UnsupportedMediaType):
    default_message = "Image data does not match the declared disk format."


# -- 416 --------------------------------------------------------------------
class RangeNotSatisfiable(GlanceServiceError):
    default_message = "Requested range not satisfiable."
    code = 416

    def __init__(self, size: int | None = None, message: str | None = None):
        self.size = size
        super().__init__(message)


# -- 503 --------------------------------------------------------------------
class ServiceUnavailable(GlanceServiceError):
    default_message = "The service is temporarily unavailable."
    code = 503


class RegistryUnavailable(ServiceUnavailable):
    default_message = "The image registry is unavailable."


class StoreUnavailable(ServiceUnavailable):
    default_message = "The image store is unavailable."


# -- another API node's answers (api/stage_proxy.py) ---------------------------------
class StageHostFailed(GlanceServiceError):
    """The API node holding an image's staged data failed to answer (502)."""

    default_message = "Stage host is unavailable"
    code = 502


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
