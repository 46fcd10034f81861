"""One kept-alive HTTP/1.1 connection from glance-api to glance-registry, reduced to what the
hop uses: a POST with a bytes body, the status, the body, whether the server closes.

``http.client`` did this at about a quarter of an API worker's CPU on a create + 1 KiB upload
(issue 17, py-spy): each response parses its headers through the ``email`` package and wraps
the socket in a new buffered file. Here the headers are split by hand (the hop needs three of
them) and one buffered reader lives as long as the connection. The interface is the subset
of ``http.client.HTTPConnection`` that ``registry.client`` uses (``sock``, ``timeout``,
``connect``, ``request``, ``getresponse``, ``close``) and failures are the same classes
(``OSError``, ``TimeoutError``, ``http.client.HTTPException`` and its ``RemoteDisconnected``),
so the client's resend rules read them as before. What goes on the wire is what
``http.client`` sent: ``Host``, ``Accept-Encoding: identity``, ``Content-Length`` and the
caller's headers, in one ``send``.
"""

from __future__ import annotations

import http.client
import socket
import ssl

_MAX_LINE = 65536  # http.client's limits
_MAX_HEADERS = 100


class Response:
    __slots__ = ("status", "will_close", "_body")

    def __init__(self, status: int, will_close: bool, body: bytes):
        self.status = status
        self.will_close = will_close
        self._body = body

    def read(self) -> bytes:
        return self._body


class Connection:
    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext | None = None):
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.host = host
        self.port = port
        self.timeout = timeout
        self._context = context
        self.sock: socket.socket | None = None
        self._reader = None
        # Host as http.client sends it: IPv6 literals in brackets, the port always given.
        name = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._host_header = f"Host: {name}:{port}\r\nAccept-Encoding: identity\r\n"

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._reader = sock.makefile("rb")

    def close(self) -> None:
        sock, reader = self.sock, self._reader
        self.sock = self._reader = None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if lines.count("\r") != len(headers) or lines.count("\n") != len(headers):
            # A line break inside a name or value would start a header of the caller's
            # choosing: refused, as http.client refuses it.
            raise ValueError("Invalid header: a line break inside a header name or value")
        head = f"{method} {path} HTTP/1.1\r\n{self._host_header}{lines}Content-Length: {len(body)}\r\n\r\n"
        if self.sock is None:
            self.connect()
        self.sock.sendall(head.encode("latin-1") + body)

    def getresponse(self) -> Response:
        reader = self._reader
        while True:
            line = reader.readline(_MAX_LINE + 1)
            if not line:
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            version, status, _ = _status_line(line)
            headers = _headers(reader)
            if status != 100:
                break
            # An interim "100 Continue": the answer follows (http.client skips it too).
        conn_tokens = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            will_close = "keep-alive" not in conn_tokens
        else:
            will_close = "close" in conn_tokens
        if status in (204, 304) or 100 <= status < 200:
            return Response(status, will_close, b"")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Response(status, will_close, _chunked(reader))
        length = headers.get("content-length")
        if length is None:
            # No framing: the body ends with the connection.
            return Response(status, True, reader.read())
        try:
            size = int(length)
            if size < 0:
                raise ValueError(length)
        except ValueError:
            raise http.client.HTTPException(f"Invalid Content-Length: {length!r}") from None
        body = reader.read(size)
        if len(body) < size:
            raise http.client.IncompleteRead(body, size - len(body))
        return Response(status, will_close, body)


def _status_line(line: bytes) -> tuple[str, int, str]:
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong("status line")
    parts = line.decode("iso-8859-1").rstrip("\r\n").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise http.client.BadStatusLine(repr(line))
    try:
        status = int(parts[1])
    except ValueError:
        raise http.client.BadStatusLine(repr(line)) from None
    if not 100 <= status <= 999:
        raise http.client.BadStatusLine(repr(line))
    return parts[0], status, parts[2] if len(parts) > 2 else ""


def _headers(reader) -> dict[str, str]:
    """The response's header fields, names lower-cased (a repeated field: the values joined
    with ", ", as HTTP allows for the fields read here)."""
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS + 1):
        line = reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("iso-8859-1").partition(":")
        if not sep:
            continue  # not a field (http.client's parser skips these too)
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")


def _chunked(reader) -> bytes:
    parts = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("chunk size")
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            break
        chunk = reader.read(size)
        if len(chunk) < size:
            raise http.client.IncompleteRead(b"".join(parts) + chunk, size - len(chunk))
        parts.append(chunk)
        reader.readline(_MAX_LINE + 1)  # the CRLF after the chunk
    while reader.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
        pass  # trailer fields
    return b"".join(parts)
