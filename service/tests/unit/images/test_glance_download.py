"""glance-download's pure parts: the catalog lookup and which properties are carried over."""

from __future__ import annotations

import json

import pytest

from glance_service.images import glance_download as gd

# As keystonemiddleware passes a v3 token's catalog (X-Service-Catalog, v2 shape).
CATALOG = [
    {
        "type": "identity",
        "name": "keystone",
        "endpoints": [{"region": "RegionTwo", "publicURL": "http://ks"}],
    },
    {
        "type": "image",
        "name": "glance",
        "endpoints": [
            {"region": "RegionOne", "publicURL": "http://one:9292", "internalURL": "http://one-int"}
        ],
    },
    {
        "type": "image",
        "name": "glance-upstream",
        "endpoints": [
            {"publicURL": "http://no-region"},
            {"region": "RegionTwo", "publicURL": "http://two:9292/", "adminURL": "http://two-adm"},
        ],
    },
]


@pytest.mark.parametrize(
    "region, interface, url",
    [
        ("RegionTwo", "public", "http://two:9292"),
        ("regiontwo", "public", "http://two:9292"),  # case-insensitive, as upstream
        ("RegionTwo", "admin", "http://two-adm"),
        ("RegionOne", "internal", "http://one-int"),
    ],
)
def test_endpoint_of_the_region_and_interface(region, interface, url):
    assert gd.endpoint(json.dumps(CATALOG), region, interface) == url
    assert gd.endpoint(CATALOG, region, interface) == url


@pytest.mark.parametrize(
    "catalog, region, interface",
    [
        (CATALOG, "RegionNine", "public"),
        (CATALOG, "RegionTwo", "internal"),  # RegionTwo has no internal URL
        (CATALOG[:1], "RegionTwo", "public"),  # identity only: no image service there
        (None, "RegionTwo", "public"),  # trusted-headers mode: no catalog at all
        ("not json", "RegionTwo", "public"),
    ],
)
def test_no_endpoint_is_upstreams_message(catalog, region, interface):
    with pytest.raises(gd.DownloadError) as err:
        gd.endpoint(catalog, region, interface)
    assert err.value.message == f"{interface} glance endpoint not found for region {region}"


def test_carried_properties_by_prefix_never_core_nor_reserved():
    remote = {
        "id": "x",
        "name": "n",
        "os_hidden": False,
        "os_hash_algo": "sha512",
        "os_hash_value": "ab",
        "hw_disk_bus": "scsi",
        "trait:CUSTOM_X": "required",
        "os_distro": "debian",
        "os_distro_extra": "also a match",  # a prefix, as upstream
        "os_version": "12",
        "os_glance_importing_to_stores": "a",
        "architecture": "x86_64",
    }
    prefixes = ["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"]
    assert gd.carried_properties(remote, prefixes) == {
        "hw_disk_bus": "scsi",
        "trait:CUSTOM_X": "required",
        "os_distro": "debian",
        "os_distro_extra": "also a match",
    }
    # a broad prefix still never copies the record's own fields nor os_glance_*
    assert gd.carried_properties(remote, ["os_"]) == {
        "os_distro": "debian",
        "os_distro_extra": "also a match",
        "os_version": "12",
    }


def test_the_option_is_upstreams():
    opt = gd.glance_download_opts[0]
    assert (opt.name, opt.default) == (
        "extra_properties",
        ["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"],
    )


def _download(record: dict) -> gd.GlanceDownload:
    job = gd.GlanceDownload(
        None, None, "local-id", {"glance_region": "RegionTwo", "glance_image_id": "r"}, None
    )
    job.record = record
    return job


def test_hashes_checked_against_the_source_where_the_algorithm_matches():
    mine = {"checksum": "c1", "os_hash_algo": "sha512", "os_hash_value": "v1"}
    _download({"checksum": "c1", "os_hash_algo": "sha512", "os_hash_value": "v1"}).check_hashes(mine)
    # another algorithm there: only the md5 checksum compares
    _download({"checksum": "c1", "os_hash_algo": "sha256", "os_hash_value": "zz"}).check_hashes(mine)
    with pytest.raises(gd.DownloadError, match="does not match its os_hash_value"):
        _download({"checksum": "c1", "os_hash_algo": "sha512", "os_hash_value": "v2"}).check_hashes(mine)
    with pytest.raises(gd.DownloadError, match="does not match its checksum"):
        _download({"checksum": "c2"}).check_hashes(mine)


def test_interface_defaults_to_public_and_no_token_no_header():
    job = _download({})
    assert job.interface == "public"
    assert job.headers == {}
    with pytest.raises(gd.DownloadError, match="no longer available"):
        job.fetch()
