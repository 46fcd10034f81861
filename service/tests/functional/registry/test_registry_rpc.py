"""glance-registry as a real process, through RegistryClient and raw HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import requests
from oslo_config import cfg

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.registry import client as client_mod
from glance_service.registry.client import RegistryClient


def test_healthcheck_needs_no_identity(registry):
    resp = requests.get(registry.url + "/healthcheck", timeout=5)
    assert (resp.status_code, resp.text) == (200, "OK")


def test_ping(client, alice):
    assert client.ping(alice)["database"] == "ok"


def test_image_lifecycle_over_the_wire(client, alice):
    image = client.image_create(
        alice, {"name": "cirros", "properties": {"os_distro": "cirros"}, "tags": ["b", "a"]}
    )
    assert image["owner"] == alice.project_id and image["tags"] == ["a", "b"]
    assert client.image_get(alice, image["id"]) == image
    saving = client.image_update(alice, image["id"], {"status": "saving"}, from_state="queued")
    assert saving["status"] == "saving"
    client.image_location_add(alice, image["id"], "file:///tmp/x", {"store": "file"})
    active = client.image_update(
        alice,
        image["id"],
        {"status": "active", "size": 3, "properties": {}},
        purge_props=True,
        from_state="saving",
    )
    assert active["properties"] == {} and active["size"] == 3
    listed = client.image_get_all(
        alice, {"conditions": [("size", "gte", 3), ("status", "in", ["active"])], "tags": ["a"]}, limit=10
    )
    assert [i["id"] for i in listed] == [image["id"]]
    before = client.image_destroy(alice, image["id"])
    assert before["locations"][0]["metadata"] == {"store": "file"}
    with pytest.raises(exceptions.ImageNotFound):
        client.image_get(alice, image["id"])


def test_errors_cross_the_wire_by_class(client, alice, bob):
    with pytest.raises(exceptions.ImageNotFound) as missing:
        client.image_get(alice, str(uuid.uuid4()))
    assert "No image found" in missing.value.message and missing.value.code == 404
    image = client.image_create(alice, {"name": "x", "visibility": "private"})
    with pytest.raises(exceptions.ImageNotFound):
        client.image_get(bob, image["id"])  # identity travels in the headers
    with pytest.raises(exceptions.Duplicate):
        client.image_create(alice, {"id": image["id"], "name": "again"})
    with pytest.raises(exceptions.ImageStatusConflict):
        client.image_update(alice, image["id"], {"status": "active"}, from_state="saving")
    with pytest.raises(exceptions.InvalidMarker):
        client.image_get_all(alice, marker=str(uuid.uuid4()))
    with pytest.raises(exceptions.InvalidSortKey):
        client.image_get_all(alice, sort_keys=["colour"])
    with pytest.raises(exceptions.Forbidden):
        client.image_get_by_status(alice, "saving")
    with pytest.raises(exceptions.TagNotFound):
        client.image_tag_delete(alice, image["id"], "nope")
    with pytest.raises(exceptions.BadRequest):
        client.image_create(alice, {"name": "x", "colour": "blue"})


def test_members_and_admin_calls(client, alice, bob, admin):
    image = client.image_create(alice, {"name": "shared", "visibility": "shared"})
    client.image_member_create(alice, image["id"], bob.project_id)
    assert client.image_get_all(bob, {"visibility": "shared"}) == []
    assert client.image_member_update(bob, image["id"], bob.project_id, "accepted")["status"] == "accepted"
    assert [i["id"] for i in client.image_get_all(bob, {"visibility": "shared"})] == [image["id"]]
    assert [m["member"] for m in client.image_member_find(bob, image["id"])] == [bob.project_id]
    stuck = client.image_create(alice, {"name": "stuck", "status": "saving"})
    assert stuck["id"] in [i["id"] for i in client.image_get_by_status(admin, "saving")]


def test_keep_alive_reuses_one_connection_per_thread(client, registry, alice):
    for _ in range(20):
        client.ping(alice)
    conn = client._connection()
    assert (conn.connects, conn.requests) == (1, 20)

    seen = []

    def worker():
        for _ in range(10):
            client.ping(alice)
        seen.append(client._connection())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 4
    assert all((c.connects, c.requests) == (1, 10) for c in seen)


def test_an_idle_connection_closed_by_the_registry_is_replaced_before_a_write(make_registry, alice):
    """The registry drops keep-alive connections idle past its timeout: a write (never resent)
    must still go through on a fresh connection, not fail on the dead one."""
    reg = make_registry(extra="http_keepalive_timeout = 1\n")
    reg.start()
    client = RegistryClient(reg.client_conf())
    try:
        client.ping(alice)
        time.sleep(2.5)
        assert client.image_create(alice, {"name": "after-idle"})["name"] == "after-idle"
        assert client._connection().connects == 2
    finally:
        client.close()


def test_raw_protocol_errors(registry):
    rpc = registry.url + "/rpc"
    bad_json = requests.post(rpc, data=b"{not json", timeout=5)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "BadRequest"
    unknown = requests.post(rpc, json={"command": "drop_everything", "kwargs": {}}, timeout=5)
    assert unknown.status_code == 400 and "Unknown registry command" in unknown.json()["error"]["message"]
    private = requests.post(rpc, json={"command": "_records", "kwargs": {}}, timeout=5)
    assert private.status_code == 400
    bad_kwargs = requests.post(rpc, json={"command": "image_get", "kwargs": {"nope": 1}}, timeout=5)
    assert bad_kwargs.status_code == 400
    shape = requests.post(rpc, json=["image_get"], timeout=5)
    assert shape.status_code == 400
    wrong_method = requests.get(rpc, timeout=5)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert requests.get(registry.url + "/nothing", timeout=5).status_code == 404


def test_unreachable_registry_is_registry_unavailable(make_registry, alice):
    reg = make_registry(sync=False)  # never started: nothing listens on its port
    client = RegistryClient(reg.client_conf())
    with pytest.raises(exceptions.RegistryUnavailable) as err:
        client.image_get(alice, str(uuid.uuid4()))
    assert err.value.code == 503
    with pytest.raises(exceptions.RegistryUnavailable):
        client.image_create(alice, {"name": "x"})


def test_client_survives_a_registry_restart(make_registry, alice):
    reg = make_registry()
    reg.start()
    client = RegistryClient(reg.client_conf())
    try:
        image = client.image_create(alice, {"name": "before"})
        reg.stop()
        with pytest.raises(exceptions.RegistryUnavailable):
            client.image_get(alice, image["id"])
        reg.start()
        # The kept-alive connection died with the old process; the client reconnects.
        assert client.image_get(alice, image["id"])["name"] == "before"
        assert client.image_create(alice, {"name": "after"})["name"] == "after"
    finally:
        client.close()
        reg.stop()


def test_registry_refuses_an_unsynced_database(make_registry):
    reg = make_registry(sync=False)
    proc = reg.start(wait=False)
    assert proc.wait(timeout=60) == 1
    assert "glance-manage db_sync" in reg.output()


def test_keystone_flavor_guards_rpc_but_not_healthcheck(make_registry):
    reg = make_registry(flavor="keystone")
    reg.start()
    try:
        assert requests.get(reg.url + "/healthcheck", timeout=5).status_code == 200
        resp = requests.post(reg.url + "/rpc", json={"command": "ping", "kwargs": {}}, timeout=10)
        assert resp.status_code == 401
        # Trusted headers mean nothing when tokens are required.
        spoofed = requests.post(
            reg.url + "/rpc",
            json={"command": "ping", "kwargs": {}},
            headers={"X-Roles": "admin", "X-Identity-Status": "Confirmed"},
            timeout=10,
        )
        assert spoofed.status_code == 401
    finally:
        reg.stop()


def test_service_token_failure_is_a_clear_503(tmp_path, admin):
    """Without a user token and with flavor keystone the client authenticates as the service;
    missing credentials or an unreachable Keystone must be a 503 with a reason, not a 500."""

    def client_for(keystone_section: str) -> RegistryClient:
        path = tmp_path / f"api-{len(keystone_section)}.conf"
        path.write_text(
            "[DEFAULT]\nregistry_host = 127.0.0.1\nregistry_port = 9\n"
            "[paste_deploy]\nflavor = keystone\n"
            f"[keystone_authtoken]\n{keystone_section}"
        )
        conf = cfg.ConfigOpts()
        client_mod.register_opts(conf)
        conf(["--config-file", str(path)])
        return RegistryClient(conf)

    with pytest.raises(exceptions.ServiceUnavailable) as no_credentials:
        client_for("").ping(admin)
    assert "auth_type" in no_credentials.value.message

    unreachable_keystone = (
        "auth_type = password\nauth_url = http://127.0.0.1:9/identity/v3\nusername = glance\n"
        "password = secret\nproject_name = service\nuser_domain_name = Default\n"
        "project_domain_name = Default\n"
    )
    with pytest.raises(exceptions.ServiceUnavailable) as unreachable:
        client_for(unreachable_keystone).ping(admin)
    assert "Keystone" in unreachable.value.message


def _signed_client(reg, secret: str) -> RegistryClient:
    conf = reg.client_conf(flavor="keystone")
    conf.set_override("registry_identity_secret", secret)
    return RegistryClient(conf)


def test_keystone_registry_accepts_the_api_signed_identity(make_registry, alice, bob, admin):
    """With the shared secret the registry takes glance-api's identity without a token (no
    Keystone is reachable here) and still decides visibility by it."""
    reg = make_registry(flavor="keystone", extra="registry_identity_secret = s3cret\n")
    reg.start()
    client = _signed_client(reg, "s3cret")
    try:
        values = {"name": "signed", "visibility": "private", "owner": alice.project_id}
        image = client.image_create(alice, values)
        assert client.image_get(alice, image["id"])["owner"] == alice.project_id
        with pytest.raises(exceptions.ImageNotFound):
            client.image_get(bob, image["id"])
        # The service's own maintenance calls are signed too: no service token needed.
        assert image["id"] in [i["id"] for i in client.image_get_all(admin, {"visibility": "all"})]

        wrong = _signed_client(reg, "other")
        with pytest.raises(exceptions.Unauthorized):
            wrong.image_get(alice, image["id"])
        wrong.close()
    finally:
        client.close()


def test_signed_identity_cannot_be_altered_or_replayed(make_registry, alice):
    from glance_service.registry import identity

    reg = make_registry(flavor="keystone", extra="registry_identity_secret = s3cret\n")
    reg.start()
    rpc = reg.url + "/rpc"
    body = json.dumps({"command": "ping", "kwargs": {}}).encode()
    admin_view = RequestContext(user_id="u", project_id="p", roles=["admin"])

    def post(headers, data=body):
        return requests.post(rpc, data=data, headers=headers, timeout=10).status_code

    assert post(identity.sign("s3cret", alice, body)) == 200
    # Another call's body under a valid signature (e.g. a destroy instead of a ping): refused.
    other = json.dumps({"command": "image_destroy", "kwargs": {"image_id": "x"}}).encode()
    assert post(identity.sign("s3cret", alice, body), data=other) == 401
    # Roles raised in the identity after signing: refused.
    headers = identity.sign("s3cret", alice, body)
    headers[identity.IDENTITY_HEADER] = identity.sign("s3cret", admin_view, body)[identity.IDENTITY_HEADER]
    assert post(headers) == 401
    # A call captured ten minutes ago: refused.
    assert post(identity.sign("s3cret", alice, body, now=time.time() - 600)) == 401
    # Plain identity headers still mean nothing.
    assert post({"X-Roles": "admin", "X-Identity-Status": "Confirmed"}) == 401
