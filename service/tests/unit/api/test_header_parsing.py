"""Numbers in request headers (Range, x-openstack-image-size): any length of digits gives a
4xx or the usual answer, never a 500 (int() refuses more than 4300 digits)."""

from __future__ import annotations

import pytest
import webob

from glance_service import exceptions
from glance_service.api import image_data

HUGE = "9" * 5000


def test_range_with_a_huge_first_byte_is_unsatisfiable():
    first, last = image_data._parse_range(f"bytes={HUGE}-")
    assert last is None
    with pytest.raises(exceptions.RangeNotSatisfiable):
        image_data._resolve_range((first, last), 1024)


def test_range_with_a_huge_suffix_is_the_whole_image():
    wanted = image_data._parse_range(f"bytes=-{HUGE}")
    assert image_data._resolve_range(wanted, 1024) == (0, 1024)


def test_range_with_a_huge_last_byte_runs_to_the_end():
    wanted = image_data._parse_range(f"bytes=10-{HUGE}")
    assert image_data._resolve_range(wanted, 1024) == (10, 1014)


def test_range_leading_zeros_are_not_huge():
    assert image_data._parse_range("bytes=" + "0" * 5000 + "5-" + "0" * 30 + "9") == (5, 9)


def test_huge_declared_image_size_is_over_any_cap():
    req = webob.Request.blank("/", headers={"x-openstack-image-size": HUGE})
    assert image_data._expected_size(req) > 2**62
