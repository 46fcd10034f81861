"""What the stores take and hand back: ``Incoming`` data to write, ``StoredData`` after a
write, ``DataSource`` for a read."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from glance_service import exceptions
from glance_service.store.hashing import HASH_ALGO

# One read from the client. gunicorn's Body.read() fills at most 1 MiB per step, so a larger
# request only adds copies; hashlib already releases the GIL at this size.
READ_CHUNK = 1024 * 1024


@contextlib.contextmanager
def translated(translate: Callable[[Exception], exceptions.GlanceServiceError]):
    """Let the service's own errors through; raise any other as ``translate(exc)`` (a store's
    client library errors become the service's, with the original chained)."""
    try:
        yield
    except exceptions.GlanceServiceError:
        raise
    except Exception as exc:
        raise translate(exc) from exc


@dataclasses.dataclass
class Incoming:
    """Image data on its way into a store: ``reader``'s bytes, counted and checked as they
    pass against the size cap and the declared size, with one set of checks and messages for
    every store (file, rbd, s3, swift, and glance_store's drivers, which call ``read``).

    A declared size over the cap fails at once; more data than declared or than the cap fails
    on the read that crosses it; less than declared fails on the read that finds the end."""

    image_id: str
    reader: object = dataclasses.field(repr=False)
    expected_size: int | None = dataclasses.field(kw_only=True)
    size_cap: int = dataclasses.field(kw_only=True)
    hash_algo: str = dataclasses.field(default=HASH_ALGO, kw_only=True)
    size: int = dataclasses.field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.expected_size is not None and self.expected_size > self.size_cap:
            raise exceptions.ImageSizeLimitExceeded(
                f"The image size {self.expected_size} exceeds the limit of {self.size_cap} bytes."
            )

    def read(self, n: int = READ_CHUNK) -> bytes:
        buf = self.reader.read(n if n and n > 0 else READ_CHUNK)
        if not buf:
            if self.expected_size is not None and self.size != self.expected_size:
                raise exceptions.BadRequest(
                    f"The data ({self.size} bytes) is smaller than the declared size of "
                    f"{self.expected_size} bytes."
                )
            return buf
        self.size += len(buf)
        if self.size > self.size_cap:
            raise exceptions.ImageSizeLimitExceeded(f"The image exceeds the limit of {self.size_cap} bytes.")
        if self.expected_size is not None and self.size > self.expected_size:
            raise exceptions.BadRequest(
                f"The data is larger than the declared size of {self.expected_size} bytes."
            )
        return buf

    def __iter__(self) -> Iterator[bytes]:
        while buf := self.read():
            yield buf

    def feed(self, hasher, put: Callable[[bytes], object]) -> int:
        """Hand every buffer to ``hasher`` and to ``put`` (a store's writer); the size read."""
        for buf in self:
            hasher.update(buf)
            put(buf)
        return self.size


@dataclasses.dataclass
class StoredData:
    url: str
    size: int
    checksum: str
    hash_algo: str
    hash_value: str
    metadata: dict = dataclasses.field(default_factory=dict)


class BoundedFile:
    """A file that ends at ``end``: ``read`` never goes past it, while ``fileno`` exposes the
    real descriptor (positioned at the range start) so that a server can ``sendfile`` it.

    The bound matters when the server cannot use sendfile (TLS, or sendfile disabled): it
    then iterates the file and would otherwise read to the end of the image for a range.
    """

    def __init__(self, fileobj: BinaryIO, end: int):
        self._file = fileobj
        self._end = end
        self.name = getattr(fileobj, "name", None)

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(pos, whence)

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._file.tell()
        if left <= 0:
            return b""
        return self._file.read(left if n is None or n < 0 else min(n, left))

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed


class DataSource:
    """Image data to send: ``size`` bytes, either a positioned file (``fileobj``, for
    zero-copy ``sendfile``) or an iterator of byte chunks (any other store)."""

    def __init__(
        self,
        size: int,
        total_size: int | None,
        fileobj: BoundedFile | None = None,
        chunks: Iterable[bytes] | None = None,
        on_close=None,
    ):
        self.size = size
        self.total_size = total_size
        self.fileobj = fileobj
        self._chunks = chunks
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        if self.fileobj is not None:
            while True:
                buf = self.fileobj.read(READ_CHUNK)
                if not buf:
                    return
                yield buf
        else:
            yield from self._chunks

    def close(self) -> None:
        if self.fileobj is not None:
            self.fileobj.close()
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self._on_close is not None:
            self._on_close()
