import itertools

import pytest

from glance_service import exceptions
from glance_service.images import states

ALLOWED = {
    ("queued", "saving"),
    ("queued", "uploading"),
    ("queued", "importing"),
    ("queued", "active"),
    ("queued", "deleted"),
    ("saving", "active"),
    ("saving", "killed"),
    ("saving", "deleted"),
    ("saving", "queued"),
    ("uploading", "importing"),
    ("uploading", "queued"),
    ("uploading", "deleted"),
    ("importing", "active"),
    ("importing", "deleted"),
    ("importing", "queued"),
    ("active", "pending_delete"),
    ("active", "deleted"),
    ("active", "deactivated"),
    ("killed", "deleted"),
    ("pending_delete", "deleted"),
    ("pending_delete", "active"),
    ("deactivated", "active"),
    ("deactivated", "deleted"),
}


@pytest.mark.parametrize("pair", list(itertools.product(states.ALL, states.ALL)))
def test_every_pair(pair):
    current, new = pair
    assert states.is_allowed(current, new) is (pair in ALLOWED)


@pytest.mark.parametrize("pair", sorted(set(itertools.product(states.ALL, states.ALL)) - ALLOWED))
def test_check_refuses_with_the_callers_error(pair):
    with pytest.raises(exceptions.InvalidImageStatusTransition):
        states.check(
            {"status": pair[0], "disk_format": "raw", "container_format": "bare"},
            pair[1],
            exceptions.InvalidImageStatusTransition,
        )


@pytest.mark.parametrize("new", ["saving", "active", "importing"])
@pytest.mark.parametrize("missing", ["disk_format", "container_format"])
def test_data_needs_formats(new, missing):
    image = {"status": "queued", "disk_format": "raw", "container_format": "bare"}
    image[missing] = None
    with pytest.raises(exceptions.BadRequest):
        states.check(image, new)


def test_queued_resets_size():
    assert states.reset_on_queued({"status": "queued"}) == {
        "status": "queued",
        "size": None,
        "virtual_size": None,
    }
    assert states.reset_on_queued({"status": "active", "size": 3}) == {"status": "active", "size": 3}
