"""Which external URLs the service may fetch: Glance 33's ``[import_filtering_opts]`` rules
(``glance.common.utils.get_validated_address``), for web-download, the tasks API's
``import_from`` and http locations.

A URL passes when its scheme, host and explicit port pass the allow/deny lists (where both an
allow and a deny list are set, only the allow list counts), and its host resolves to at least
one address that is neither loopback nor link-local (the cloud's metadata service,
169.254.169.254) unless the host is in ``allowed_hosts``. Encoded IPv4 forms (``2130706433``,
``0x7f000001``, ``127.1``) are refused, as upstream refuses them (SSRF bypasses)."""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse


def normalize_hostname(host: str | None) -> str | None:
    """An IP address in its standard form, a hostname that resolves unchanged, else None."""
    if not host:
        return host
    for kind in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        try:
            return str(kind(host))
        except ValueError:
            pass
    if all(c.isdigit() or c == "." for c in host):
        return None
    try:
        # The trailing dot forces a DNS lookup: inet_aton's encoded forms fail it.
        socket.getaddrinfo(host if host.endswith(".") else host + ".", 80)
    except (socket.gaierror, UnicodeError):
        return None
    return host


def allowed_addresses(opts, uri: object) -> list[str]:
    """The addresses ``uri`` may be fetched from (``opts``: the ``import_filtering_opts``
    group); ``ValueError`` with the reason when there is none."""
    if not isinstance(uri, str) or not uri:
        raise ValueError("empty external URI")
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid external URI: {exc}") from exc
    scheme = parts.scheme
    allowed_hosts = opts.allowed_hosts
    denied_schemes = [] if opts.allowed_schemes else opts.disallowed_schemes
    denied_hosts = [] if allowed_hosts else opts.disallowed_hosts
    denied_ports = [] if opts.allowed_ports else opts.disallowed_ports
    allowed_schemes = opts.allowed_schemes
    if not scheme or (allowed_schemes and scheme not in allowed_schemes) or scheme in denied_schemes:
        raise ValueError("scheme not allowed")
    host = normalize_hostname(parts.hostname)
    if not host or (allowed_hosts and host not in allowed_hosts) or host in denied_hosts:
        raise ValueError("host not allowed")
    # As upstream: only a port written in the URL is checked against the lists.
    if port and ((opts.allowed_ports and port not in opts.allowed_ports) or port in denied_ports):
        raise ValueError("port not allowed")
    return _resolve(host, port or (443 if scheme == "https" else 80), allowed_hosts, denied_hosts)


def _resolve(host: str, port: int, allowed_hosts: list, denied_hosts: list) -> list[str]:
    try:
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = []
            for info in socket.getaddrinfo(host if host.endswith(".") else host + ".", port):
                address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                if address not in addresses:
                    addresses.append(address)
    except (OSError, ValueError, UnicodeError) as exc:
        raise ValueError(f"failed to resolve external host {host}: {exc}") from exc
    if allowed_hosts and host in allowed_hosts:
        return [str(a) for a in addresses]
    usable = []
    for address in addresses:
        check = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        check = check or address
        if check.is_loopback or check.is_link_local or _denied(address, host, denied_hosts):
            continue
        usable.append(str(address))
    if not usable:
        raise ValueError(f"no allowed addresses for external host {host}")
    return usable


def _denied(address, host: str, denied_hosts: list) -> bool:
    for entry in denied_hosts:
        if entry == host:
            continue
        try:
            if address == ipaddress.ip_address(entry):
                return True
        except ValueError:
            if str(address) == entry:
                return True
    return False


def uri_allowed(opts, uri: object) -> bool:
    try:
        allowed_addresses(opts, uri)
    except ValueError:
        return False
    return True
