"""web-download URL filtering: Glance's [import_filtering_opts] rules."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from glance_service.images import imports


def conf(**opts):
    c = cfg.ConfigOpts()
    imports.register_opts(c)
    c([], default_config_files=[])
    for key, value in opts.items():
        c.set_override(key, value, group="import_filtering_opts")
    return c


@pytest.mark.parametrize(
    ("opts", "uri", "allowed"),
    [
        ({}, "http://example.org/a.raw", True),  # port 80 implied
        ({}, "https://example.org/a.raw", True),
        ({}, "http://example.org:8080/a.raw", False),  # default ports 80, 443 only
        ({}, "ftp://example.org/a.raw", False),
        ({}, "file:///etc/passwd", False),
        ({}, "http:///nohost", False),
        ({}, "http://example.org:99999/", False),  # invalid port
        ({}, None, False),
        ({"allowed_ports": []}, "http://127.0.0.1:8080/a", True),
        ({"allowed_ports": [], "disallowed_ports": [8080]}, "http://127.0.0.1:8080/a", False),
        ({"allowed_hosts": ["127.0.0.1"]}, "http://127.0.0.2/a", False),
        ({"allowed_hosts": ["127.0.0.1"]}, "http://127.0.0.1/a", True),
        ({"disallowed_hosts": ["169.254.169.254"]}, "http://169.254.169.254/latest", False),
        # both lists set: only the allow list counts (Glance's rule)
        ({"allowed_hosts": ["a.example"], "disallowed_hosts": ["a.example"]}, "http://a.example/", True),
        ({"allowed_schemes": [], "disallowed_schemes": ["https"]}, "https://example.org/", False),
        ({"allowed_schemes": [], "disallowed_schemes": ["https"]}, "http://example.org/", True),
    ],
)
def test_uri_allowed(opts, uri, allowed):
    assert imports.uri_allowed(conf(**opts), uri) is allowed


def test_marker_of_this_process_is_alive_and_a_foreign_host_unknown():
    assert imports.marker_alive(imports.process_marker()) is True
    assert imports.marker_alive("some-other-host:1:1") is None
    host = imports.process_marker().split(":")[0]
    assert imports.marker_alive(f"{host}:999999999:1") is False
    assert imports.marker_alive(None) is None
