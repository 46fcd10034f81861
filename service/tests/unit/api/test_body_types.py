"""Body parsers of the handlers: a JSON value of the wrong type is a 400, never a TypeError
(found by tests/functional/test_fuzz_routes.py)."""

from __future__ import annotations

import pytest

from glance_service import exceptions
from glance_service.api import location_tasks


@pytest.mark.parametrize(
    "validation",
    [
        {"os_hash_algo": ["sha256"], "os_hash_value": "0" * 64},
        {"os_hash_algo": {"a": 1}, "os_hash_value": "0" * 64},
        {"os_hash_algo": "sha256", "os_hash_value": ["0" * 64]},
        {"os_hash_algo": 5, "os_hash_value": "0" * 64},
    ],
)
def test_location_validation_data_of_the_wrong_type_is_400(validation):
    with pytest.raises(exceptions.BadRequest):
        location_tasks._parse_location({"url": "http://127.0.0.1:9/x", "validation_data": validation})
