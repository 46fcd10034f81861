"""The versions document against Glance 33's ``glance/api/versions.py`` and the prefixes its
``version_negotiation.py`` accepts, for each configuration that changes them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from glance_service.api import versions

TAIL = ["2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"]
MULTI = ["2.13", "2.12", "2.11", "2.10", "2.9", "2.8"]


def upstream(cache: bool, multistore: bool) -> list[tuple[str, str]]:
    """Glance's Controller.index, step by step."""
    out = [("2.18", "CURRENT")] + [(v, "SUPPORTED") for v in ("2.17", "2.16", "2.15", "2.14")]
    if not cache:
        out = [("2.15", "SUPPORTED")]
    out += [(v, "SUPPORTED") for v in (MULTI if multistore else ["2.9"])]
    if not cache:
        out.append(("2.17", "CURRENT"))
    return out + [(v, "SUPPORTED") for v in TAIL]


def upstream_allowed(cache: bool, multistore: bool) -> set[str]:
    allowed = {"v2", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6", "v2.7", "v2.9", "v2.15", "v2.17"}
    if cache:
        allowed |= {"v2.14", "v2.16", "v2.18"}
    if multistore:
        allowed |= {"v2.8", "v2.10", "v2.11", "v2.12", "v2.13"}
    return allowed


def conf(cache: bool, multistore: bool, endpoint: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        image_cache_dir="/var/lib/glance/image-cache" if cache else None,
        enabled_backends={"a": "file", "b": "file"} if multistore else None,
        public_endpoint=endpoint,
    )


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("multistore", [False, True])
def test_list_and_accepted_prefixes_are_glances(cache, multistore):
    c = conf(cache, multistore)
    assert versions.versions_for(c) == upstream(cache, multistore)
    negotiation = versions.VersionNegotiation(lambda environ, start: [b""], c)
    assert negotiation.allowed == upstream_allowed(cache, multistore)
    current = [v for v, status in versions.versions_for(c) if status == "CURRENT"]
    assert current == (["2.18"] if cache else ["2.17"])


@pytest.mark.parametrize(
    "endpoint, href",
    [
        ("https://images.example.org", "https://images.example.org/v2/"),
        ("https://images.example.org/", "https://images.example.org/v2/"),
        ("https://lb.example.org/image", "https://lb.example.org/image/v2/"),
        ("https://lb.example.org/image/", "https://lb.example.org/image/v2/"),
    ],
)
def test_links_as_glance_builds_them(endpoint, href):
    body = json.loads(versions.versions_body(endpoint, upstream(True, False)))
    assert body["versions"][0] == {
        "id": "v2.18",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": href}],
    }
    assert {link["href"] for v in body["versions"] for link in v["links"]} == {href}
