"""web-download URL filtering: Glance's [import_filtering_opts] rules."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from glance_service.common import process
from glance_service.images import import_options, url_filter

# This machine has no DNS: the names the cases use resolve here, as a resolver would answer.
NAMES = {
    "example.org.": ["93.184.215.14"],
    "images.example.org.": ["198.51.100.99"],
    "a.example.": ["198.51.100.98"],
    "metadata.example.": ["169.254.169.254"],
    "mixed.example.": ["127.0.0.1", "198.51.100.97"],
    "mapped.example.": ["::ffff:127.0.0.1"],
}


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    import socket

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in NAMES[host]]

    monkeypatch.setattr(url_filter.socket, "getaddrinfo", getaddrinfo)


def conf(**opts):
    c = cfg.ConfigOpts()
    import_options.register_opts(c)
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
        ({"allowed_ports": []}, "http://198.51.100.7:8080/a", True),
        ({"allowed_ports": [], "disallowed_ports": [8080]}, "http://198.51.100.7:8080/a", False),
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
    assert import_options.uri_allowed(conf(**opts), uri) is allowed


def test_marker_of_this_process_is_alive_and_a_foreign_host_unknown():
    assert process.host_alive(process.host_marker()) is True
    assert process.host_alive("some-other-host:1:1") is None
    host = process.host_marker().split(":")[0]
    assert process.host_alive(f"{host}:999999999:1") is False
    assert process.host_alive(None) is None


def conf_file(tmp_path, text: str) -> cfg.ConfigOpts:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    c = cfg.ConfigOpts()
    import_options.register_opts(c)
    c(["--config-file", str(path)], default_config_files=[])
    return c


@pytest.mark.parametrize(
    ("section", "uri", "allowed"),
    [
        # Glance's documented syntax: lists in brackets (the options have bounds=True).
        ("allowed_hosts = [127.0.0.1]", "http://127.0.0.1/a.raw", True),
        ("allowed_hosts = [127.0.0.1]", "http://127.0.0.2/a.raw", False),
        ("allowed_hosts = [127.0.0.1, images.example.org]", "https://images.example.org/a", True),
        ("allowed_hosts = [127.0.0.1]\nallowed_ports = []", "http://127.0.0.1:8080/a", True),
        ("allowed_ports = [8080]", "http://198.51.100.7:8080/a", True),
        # As upstream: only a port written in the URL is checked against the lists.
        ("allowed_ports = [8080]", "http://198.51.100.7/a", True),
        ("allowed_ports = [8080]", "http://198.51.100.7:80/a", False),
        ("disallowed_hosts = [169.254.169.254]", "http://169.254.169.254/latest", False),
        ("allowed_schemes = [https]", "http://example.org/a", False),
        ("allowed_schemes = []\ndisallowed_schemes = [http]", "http://example.org/a", False),
        ("allowed_schemes = []\ndisallowed_schemes = [http]", "https://example.org/a", True),
    ],
)
def test_lists_from_a_config_file_in_glance_syntax(tmp_path, section, uri, allowed):
    c = conf_file(tmp_path, f"[import_filtering_opts]\n{section}\n")
    assert import_options.uri_allowed(c, uri) is allowed


def test_bracketed_values_are_the_items_not_part_of_them(tmp_path):
    c = conf_file(
        tmp_path, "[import_filtering_opts]\nallowed_hosts = [127.0.0.1]\nallowed_ports = [80, 8080]\n"
    )
    assert c.import_filtering_opts.allowed_hosts == ["127.0.0.1"]
    assert c.import_filtering_opts.allowed_ports == [80, 8080]


@pytest.mark.parametrize(
    "line", ["allowed_hosts = 127.0.0.1", "allowed_ports = 8080", "allowed_hosts = [not a host!]"]
)
def test_values_upstream_refuses_are_refused(tmp_path, line):
    # As in Glance: a list without its brackets (or a bad host) is an invalid value, refused
    # when the service is built; a request never reads it.
    c = conf_file(tmp_path, f"[import_filtering_opts]\n{line}\n")
    with pytest.raises(import_options.ImportOptionsError):
        import_options.check_options(c)
    assert import_options.uri_allowed(c, "http://198.51.100.7/a.raw") is False


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        # Loopback and link-local (the metadata service) are refused unless allowed_hosts names
        # them (Glance 33's resolve_pinned_address), whatever the spelling.
        ("http://127.0.0.1/a", False),
        ("http://[::1]/a", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://metadata.example/latest", False),
        ("http://mapped.example/a", False),
        ("http://mixed.example/a", True),  # one usable address is enough
        ("http://2130706433/a", False),  # encoded IPv4 forms: SSRF bypasses
        ("http://127.1/a", False),
        ("http://0x7f000001/a", False),
        ("http://no-such-host.example/a", False),
        ("http://198.51.100.7/a", True),
        ("https://example.org/a", True),
    ],
)
def test_loopback_link_local_and_encoded_hosts(uri, allowed):
    assert import_options.uri_allowed(conf(), uri) is allowed


def test_allowed_hosts_admits_loopback_it_names():
    c = conf(allowed_hosts=["127.0.0.1"])
    assert import_options.uri_allowed(c, "http://127.0.0.1/a") is True
    assert import_options.uri_allowed(c, "http://[::1]/a") is False


def test_a_denied_address_refuses_the_names_that_resolve_to_it():
    c = conf(disallowed_hosts=["198.51.100.99"])
    assert import_options.uri_allowed(c, "https://images.example.org/a") is False
    assert import_options.uri_allowed(c, "https://example.org/a") is True


@pytest.mark.parametrize(
    ("line", "option"),
    [("allowed_hosts = 127.0.0.1", "allowed_hosts"), ("disallowed_ports = 8080", "disallowed_ports")],
)
def test_a_bad_list_is_refused_when_the_service_is_built_not_per_request(tmp_path, line, option):
    # Read at start-up (and by a reload's trial build): a bad value stops the service with the
    # option's name and the syntax, instead of answering 500 to every web-download.
    c = conf_file(tmp_path, f"[import_filtering_opts]\n{line}\n")
    with pytest.raises(import_options.ImportOptionsError) as err:
        import_options.check_options(c)
    assert f"[import_filtering_opts] {option}" in str(err.value)
    assert "[" in str(err.value).split(option, 1)[1]


def test_good_lists_pass_the_start_up_check(tmp_path):
    import_options.check_options(
        conf_file(tmp_path, "[import_filtering_opts]\nallowed_hosts = [127.0.0.1]\n")
    )
