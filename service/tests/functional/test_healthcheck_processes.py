"""``/healthcheck`` of real glance-api and glance-registry processes (issue 16): the registry
killed and back, the disable file (drain), the default store's directory gone, details for
admins only."""

from __future__ import annotations

import time

import pytest
import requests

from tests.fixtures.glance_procs import start_glance

FAST = {
    "healthcheck": {"check_cache_seconds": "0.5", "store_check_cache_seconds": "0.5", "check_timeout": "2"}
}
MEMBER = {"X-Project-Id": "p", "X-Roles": "reader,member"}
ADMIN = {"X-Project-Id": "p", "X-Roles": "admin,reader,member"}


@pytest.fixture
def procs(tmp_path):
    procs = start_glance(tmp_path, extra_api=FAST, workers=1)
    yield procs
    procs.stop()


def health(url: str, **kwargs) -> requests.Response:
    return requests.get(url + "/healthcheck", timeout=10, **kwargs)


def wait_for(url: str, status: int, within: float) -> tuple[requests.Response, float]:
    t0 = time.monotonic()
    while True:
        resp = health(url)
        if resp.status_code == status:
            return resp, time.monotonic() - t0
        assert time.monotonic() - t0 < within, (resp.status_code, resp.text)
        time.sleep(0.1)


def test_api_is_503_while_its_registry_is_down_and_200_when_it_is_back(procs):
    assert (health(procs.api_url).status_code, health(procs.api_url).text) == (200, "OK")
    procs.kill_registry()
    resp, _ = wait_for(procs.api_url, 503, within=5)
    assert resp.text == "REGISTRY UNAVAILABLE"
    procs.start_registry()
    resp, _ = wait_for(procs.api_url, 200, within=5)
    assert resp.text == "OK"


def test_disable_file_drains_both_processes_which_still_serve(procs):
    flag = procs.healthcheck_disable_file
    flag.write_text("")
    for url in (procs.api_url, procs.registry_url):
        resp = health(url)
        assert (resp.status_code, resp.text) == (503, "DISABLED BY FILE"), url
        assert requests.head(url + "/healthcheck", timeout=10).status_code == 503
    # requests sent to the drained node directly are still served
    assert requests.get(procs.api_url + "/v2/images", headers=MEMBER, timeout=10).status_code == 200
    flag.unlink()
    for url in (procs.api_url, procs.registry_url):
        assert (health(url).status_code, health(url).text) == (200, "OK"), url


def test_details_for_an_admin_only(procs):
    for url in (procs.api_url, procs.registry_url):
        plain = health(url, headers={**MEMBER, "Accept": "application/json"})
        assert plain.status_code == 200
        assert plain.json() == {"detailed": False, "reasons": plain.json()["reasons"]}
        assert "threads" not in plain.text
        member = requests.get(url + "/healthcheck?detailed", headers=MEMBER, timeout=10)
        assert member.json()["detailed"] is False and "threads" not in member.text
        detailed = requests.get(url + "/healthcheck?detailed", headers=ADMIN, timeout=10)
        body = detailed.json()
        assert body["detailed"] is True and "threads" in body, url
    api = requests.get(procs.api_url + "/healthcheck?detailed", headers=ADMIN, timeout=10).json()
    details = " ".join(r["details"] for r in api["reasons"])
    assert "registry at" in details and "writable" in details


def test_api_is_503_when_its_default_store_directory_is_gone(procs):
    datadir = procs.datadir
    moved = datadir.with_name("images-moved")
    datadir.rename(moved)
    try:
        resp, _ = wait_for(procs.api_url, 503, within=5)
        assert resp.text == "STORE UNAVAILABLE"
        datadir.write_text("not a directory")
        resp, _ = wait_for(procs.api_url, 503, within=5)
        datadir.unlink()
    finally:
        if datadir.exists() and not datadir.is_dir():
            datadir.unlink()
        if moved.exists():
            moved.rename(datadir)
    wait_for(procs.api_url, 200, within=5)
    assert health(procs.registry_url).status_code == 200  # the registry has no store
