"""Quota rules (pure logic): counts, the storage quota's format, and the upload cut-off."""

from __future__ import annotations

import io

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.api import options
from glance_service.context import RequestContext
from glance_service.images import quotas


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([], project="glance-quota-test")
    return conf


class Usage:
    """Stands in for the data API's ``image_storage_usage`` (the only call quotas make)."""

    def __init__(self, used: int):
        self.used = used
        self.calls: list[str] = []

    def image_storage_usage(self, ctx, owner):
        self.calls.append(owner)
        return self.used


CTX = RequestContext(project_id="p", roles=["member"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1", 1),
        ("1024", 1024),
        ("1B", 1),
        ("1K", 1024),
        ("1KB", 1024),
        ("500MB", 500 * 1024**2),
        ("1G", 1024**3),
        ("2GB", 2 * 1024**3),
        ("3T", 3 * 1024**4),
        ("1gb", 1024**3),
        (None, 0),
        ("", 0),
    ],
)
def test_parse_storage_binary_units(text, expected):
    assert quotas.parse_storage(text) == expected


@pytest.mark.parametrize("text", ["1P", "-1", "1.5G", "G", "1 G B", "ten"])
def test_parse_storage_rejects_other_forms(text):
    with pytest.raises(ValueError):
        quotas.parse_storage(text)


def test_option_regex_refuses_what_parse_refuses(conf):
    with pytest.raises(ValueError):
        conf.set_override("user_storage_quota", "1P")
    conf.set_override("user_storage_quota", "10MB")
    assert quotas.storage_quota(conf) == 10 * 1024**2


def test_defaults(conf):
    assert conf.image_property_quota == 128
    assert conf.image_tag_quota == 128
    assert conf.image_member_quota == 128
    assert conf.image_location_quota == 10
    assert conf.user_storage_quota == "0"
    assert conf.image_size_cap == 1024**4


def test_check_count_boundaries():
    quotas.check_count("things", 3, 3)
    quotas.check_count("things", 10**6, -1)  # negative: unlimited
    with pytest.raises(exceptions.LimitExceeded) as err:
        quotas.check_count("things", 4, 3)
    assert err.value.code == 413
    assert "things" in err.value.message and "4" in err.value.message and "3" in err.value.message
    with pytest.raises(exceptions.LimitExceeded):
        quotas.check_count("things", 1, 0)


def test_reserved_properties_do_not_count(conf):
    conf.set_override("image_property_quota", 2)
    props = {"a": "1", "b": "2", "os_glance_import_task": "x", "os_glance_upload_host": "y"}
    assert quotas.counted_properties(props) == 2
    quotas.check_properties(conf, props)
    with pytest.raises(exceptions.LimitExceeded):
        quotas.check_properties(conf, {**props, "c": "3"})


def test_image_over_a_lowered_quota_may_keep_or_shrink_but_not_grow(conf):
    old = {"a": "1", "b": "2", "c": "3"}
    conf.set_override("image_property_quota", 1)
    quotas.check_properties(conf, {"a": "9", "b": "2", "c": "3"}, old)  # replace
    quotas.check_properties(conf, {"a": "1", "b": "2"}, old)  # remove
    with pytest.raises(exceptions.LimitExceeded):
        quotas.check_properties(conf, {**old, "d": "4"}, old)
    with pytest.raises(exceptions.LimitExceeded):
        quotas.check_properties(conf, old)  # create


def test_tags_count_distinct_values(conf):
    conf.set_override("image_tag_quota", 2)
    quotas.check_tags(conf, ["a", "b", "a"])
    with pytest.raises(exceptions.LimitExceeded):
        quotas.check_tags(conf, ["a", "b", "c"])
    quotas.check_tags(conf, ["a", "b", "c"], ["a", "b", "c"])  # unchanged count, already over


def test_members_and_locations(conf):
    conf.set_override("image_member_quota", 2)
    quotas.check_members(conf, 1)
    with pytest.raises(exceptions.LimitExceeded):
        quotas.check_members(conf, 2)
    conf.set_override("image_member_quota", -1)
    quotas.check_members(conf, 10**6)
    quotas.check_locations(conf, 10)
    with pytest.raises(exceptions.LimitExceeded):
        quotas.check_locations(conf, 11)


def test_unlimited_storage_never_asks_the_data_layer(conf):
    usage = Usage(10**15)
    assert quotas.remaining_storage(conf, usage, CTX, "p") is None
    quotas.check_after_upload(conf, usage, CTX, "p", 10**15)
    assert usage.calls == []


def test_remaining_storage(conf):
    conf.set_override("user_storage_quota", "1K")
    assert quotas.remaining_storage(conf, Usage(1000), CTX, "p") == 24
    assert quotas.remaining_storage(conf, Usage(5000), CTX, "p") == 1024 - 5000
    assert quotas.remaining_storage(conf, Usage(0), CTX, None) is None  # ownerless image


def test_declared_size_must_fit(conf):
    quotas.check_upload_size(24, 24, 1024)
    quotas.check_upload_size(None, 24, 1024)  # chunked: the stream is cut instead
    quotas.check_upload_size(10**12, None, 0)
    with pytest.raises(exceptions.StorageQuotaFull) as err:
        quotas.check_upload_size(25, 24, 1024)
    assert err.value.code == 413 and "user_storage_quota" in err.value.message


def test_full_project_refuses_uploads_of_unknown_size():
    for remaining in (0, -100):
        with pytest.raises(exceptions.StorageQuotaFull) as err:
            quotas.check_upload_size(None, remaining, 1024)
        assert "is full" in err.value.message
    # a known size only has to fit: an empty image fits exactly in a full quota, not in one overrun
    quotas.check_upload_size(0, 0, 1024)
    with pytest.raises(exceptions.StorageQuotaFull):
        quotas.check_upload_size(0, -1, 1024)


def test_reader_is_cut_at_the_remaining_quota(conf):
    conf.set_override("user_storage_quota", "100")
    reader = quotas.limit_upload(conf, io.BytesIO(b"x" * 150), 100)
    assert reader.read(60) == b"x" * 60
    assert reader.read(40) == b"x" * 40
    with pytest.raises(exceptions.StorageQuotaFull):
        reader.read(60)


def test_reader_over_quota_reads_nothing(conf):
    conf.set_override("user_storage_quota", "100")
    reader = quotas.limit_upload(conf, io.BytesIO(b"x"), -5)
    with pytest.raises(exceptions.StorageQuotaFull):
        reader.read(10)
    assert quotas.limit_upload(conf, io.BytesIO(b""), -5).read(10) == b""


def test_reader_exactly_at_the_quota_passes(conf):
    conf.set_override("user_storage_quota", "100")
    reader = quotas.limit_upload(conf, io.BytesIO(b"x" * 100), 100)
    assert len(reader.read(1000)) == 100 and reader.read(1000) == b""


def test_unlimited_reader_is_the_reader_itself(conf):
    body = io.BytesIO(b"abc")
    assert quotas.limit_upload(conf, body, None) is body


def test_reader_exposes_the_wrapped_readers_attributes(conf):
    class Body(io.BytesIO):
        consumed = True

    assert quotas.limit_upload(conf, Body(b""), 10).consumed is True


def test_after_upload_counts_other_images(conf):
    conf.set_override("user_storage_quota", "1K")
    quotas.check_after_upload(conf, Usage(1000), CTX, "p", 24)
    with pytest.raises(exceptions.StorageQuotaFull):
        quotas.check_after_upload(conf, Usage(1001), CTX, "p", 24)
