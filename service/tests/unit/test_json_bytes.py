"""JSON documents as bytes: orjson when installed, the standard library otherwise or when orjson
refuses the document; either way the same JSON values."""

from __future__ import annotations

import json

import pytest

from glance_service.common import json_bytes

DOC = {
    "images": [{"name": "é ü ✓", "size": 2**63 - 1, "tags": ["a"], "n": None, "ok": True, "f": 1.5}],
    "first": "/v2/images?limit=1000",
}


def test_same_values_as_the_standard_library():
    out = json_bytes.dumps(DOC)
    assert isinstance(out, bytes)
    assert json.loads(out) == DOC
    assert list(json.loads(out)["images"][0]) == list(DOC["images"][0])  # key order kept
    assert "é ü ✓".encode() in out  # UTF-8, not \\u escapes


@pytest.mark.parametrize("doc", [{"big": 2**64}, {1: "non-string key"}, {"t": (1, 2)}])
def test_documents_orjson_refuses_fall_back(doc):
    assert json.loads(json_bytes.dumps(doc)) == json.loads(json.dumps(doc))


def test_a_lone_surrogate_still_fails_to_encode():
    with pytest.raises(UnicodeEncodeError):
        json_bytes.dumps({"bad": "\ud800"})


def test_orjson_is_used():
    """orjson is a declared dependency (service/requirements.txt): missing, this fails rather
    than skips, since the API would then run on the slower stdlib encoder unnoticed."""
    import orjson

    assert json_bytes.dumps(DOC) == orjson.dumps(DOC)


# -- loads: the documents this service wrote itself (registry replies, cache entries) ----------


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(DOC).encode(),
        json_bytes.dumps(DOC),
        b'{"a": 1, "a": 2}',  # the last duplicate wins in both
        b" [1.0000000000000002, -0.0, 1E5, 9223372036854775807, -9223372036854775808] ",
        # What orjson refuses and the standard library reads: through the standard library.
        b"[NaN, Infinity, 1e400]",
        b'["\\ud800"]',
        '["utf-16"]'.encode("utf-16"),
    ],
)
def test_loads_reads_what_the_standard_library_reads(raw):
    got, want = json_bytes.loads(raw), json.loads(raw)
    assert repr(got) == repr(want)  # NaN != NaN: compare the text of the values
    if isinstance(want, dict):
        assert list(got) == list(want)  # key order kept


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff", b"[1,]"])
def test_loads_refuses_what_the_standard_library_refuses(raw):
    with pytest.raises(ValueError):
        json_bytes.loads(raw)


def test_loads_uses_orjson():
    """The registry client's reply decoding was 29% of an API worker's CPU on a 1000-image list
    with the standard library (issue 17); orjson's parse is what removes it."""
    from unittest import mock

    import orjson

    with mock.patch.object(json_bytes.json, "loads", side_effect=AssertionError("stdlib used")):
        assert json_bytes.loads(orjson.dumps(DOC)) == DOC
