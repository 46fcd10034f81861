"""The plugins' work files: a new file beside the staged data, named and locked like the
stores' partial files (``store/filesystem.py``: ``.<image id>.partial-<...>``, held by
``flock``) so that unstaging, or recovery after the process died, removes one left behind;
renamed over the staged data once complete, removed otherwise."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO

PARTIAL_MARK = ".partial-"  # store/filesystem.py's (the domain does not import the store layer)


@contextlib.contextmanager
def partial_beside(path: str, tag: str) -> Iterator[tuple[str, BinaryIO]]:
    """A new, locked, empty file beside ``path``: its name and a binary file object."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}{PARTIAL_MARK}{tag}-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fileobj = os.fdopen(fd, "wb")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp, fileobj
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # still there: not completed
        fileobj.close()  # releases the lock


def replace(tmp: str, path: str, fileobj: BinaryIO) -> None:
    """Make the completed ``tmp`` (open as ``fileobj``) the file at ``path``, durably."""
    fileobj.flush()
    os.fsync(fileobj.fileno())
    os.replace(tmp, path)
    dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
