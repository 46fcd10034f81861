"""``api/common.py::read_json``: the one reader of JSON request bodies. Every bad body is a
400 with a message, decided here, before any handler or the registry sees it."""

from __future__ import annotations

import json

import pytest
import webob

from glance_service import exceptions
from glance_service.api.common import MAX_JSON_DEPTH, read_json


def _req(body: bytes, method: str = "POST") -> webob.Request:
    req = webob.Request.blank("/v2/images", method=method)
    req.body = body
    return req


def _refused(body: bytes) -> str:
    with pytest.raises(exceptions.BadRequest) as info:
        read_json(_req(body))
    assert info.value.code == 400
    assert info.value.message
    return info.value.message


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 5000, 50_000])
def test_deep_nesting_is_400(depth):
    assert "nested" in _refused(b"[" * depth + b"]" * depth)


def test_deep_nesting_unclosed_is_400():
    _refused(b"[" * 50_000)
    _refused(b'{"a":' * 50_000)


def test_nesting_at_the_limit_is_accepted():
    body = {"a": [{"b": [1]}]}
    for _ in range(MAX_JSON_DEPTH - 4):
        body = {"x": body}
    assert read_json(_req(json.dumps(body).encode())) == body


@pytest.mark.parametrize(
    "body",
    [
        rb'{"name": "\ud800"}',
        rb'{"name": "a\udfffb"}',
        rb'{"\ud800": "x"}',
        rb'{"tags": ["ok", "\udc00"]}',
        rb'[{"op": "add", "path": "/p", "value": "\ud83d"}]',
        rb'{"a": {"b": [{"c": ["\ud800"]}]}}',
        rb'["\ud800"]',
    ],
)
def test_lone_surrogates_anywhere_are_400(body):
    assert "UTF-8" in _refused(body)


def test_surrogate_pairs_are_accepted():
    assert read_json(_req(rb'{"name": "\ud83d\ude00"}')) == {"name": "\U0001f600"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": NaN}',
        b'{"name": Infinity}',
        b'{"min_disk": -Infinity}',
        b'{"minimum": 1e999}',
        b"{",
        b'{"a": 1,}',
        b"\xff\xfe",
        b'{"name": "\xff"}',
        b"",
        b"   ",
        b"1",
        b'"x"',
        b"null",
        b"true",
        b'{"a": 1' + b"0" * 5000 + b"}",  # beyond Python's int digits limit
    ],
)
def test_malformed_or_not_a_document_is_400(body):
    if not body:
        # No body at all: "Body expected" (required) rather than malformed.
        with pytest.raises(exceptions.BadRequest):
            read_json(webob.Request.blank("/", method="POST"))
        return
    _refused(body)


def test_valid_documents_unchanged():
    doc = {"name": "é ✓ \u202eRTL \U0001f600", "nul": "a\x00b", "n": [1, 2.5, None, True]}
    assert read_json(_req(json.dumps(doc).encode())) == doc
    assert read_json(_req(json.dumps(doc, ensure_ascii=False).encode())) == doc


@pytest.mark.parametrize(
    "body",
    [
        b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 BOM (Glance decodes UTF-8 strictly, then json.loads: 400)
        '{"a": 1}'.encode("utf-16"),  # json.loads(bytes) would guess UTF-16; Glance reads UTF-8 only
        '{"a": 1}'.encode("utf-32-le"),
        b'{"name": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 bytes (json's surrogatepass)
    ],
)
def test_only_utf8_bodies(body):
    _refused(body)


def test_optional_body_absent_is_none():
    assert read_json(webob.Request.blank("/", method="POST"), required=False) is None
