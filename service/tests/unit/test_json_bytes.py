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
