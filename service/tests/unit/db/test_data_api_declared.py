"""The data API is declared once (``db.interface.OPERATIONS``): the database implements every
declared operation with the declared arguments, the registry client's methods and the
registry's commands are derived from the declaration, and the bodies on the wire stay those
that glance-registry and glance-api of the previous release send and accept (a rolling
upgrade runs either one against the other)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db.database_api import DatabaseAPI
from glance_service.db.interface import OPERATIONS, READ
from glance_service.registry import client as client_mod
from glance_service.registry.client import RegistryClient
from glance_service.registry.server import RegistryApp
from tests.fixtures.registry_rpc import rpc

NAMES = list(OPERATIONS)
# {command: the kwargs RegistryClient sent, in order, when given only the required arguments
# (each as "<name>")}, recorded from the client before the declaration existed.
WIRE = json.loads((Path(__file__).parent / "registry_wire.json").read_text())
ALICE = RequestContext(user_id="u-alice", project_id="alpha", roles=["member"])


def _params(func) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


def test_the_declaration_has_the_calls_of_the_previous_release():
    assert sorted(WIRE) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_database_implements_each_operation_as_declared(name):
    declared = OPERATIONS[name].define("pass")
    assert _params(getattr(DatabaseAPI, name)) == _params(declared)


def test_the_database_has_no_undeclared_operation():
    # An undeclared method would work with data_api = database and fail over the registry.
    public = {n for n in dir(DatabaseAPI) if not n.startswith("_")}
    assert public == set(OPERATIONS)


@pytest.fixture
def sent(monkeypatch) -> tuple[RegistryClient, list[bytes]]:
    conf = cfg.ConfigOpts()
    client_mod.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("flavor", "", group="paste_deploy")
    bodies: list[bytes] = []

    def send(conn, body, headers, timeout):
        bodies.append(body)
        return 200, b'{"result": 7}'

    client = RegistryClient(conf)
    monkeypatch.setattr(client, "_send", send)
    return client, bodies


@pytest.mark.parametrize("name", NAMES)
def test_the_client_sends_what_the_previous_release_sent(sent, name):
    client, bodies = sent
    op = OPERATIONS[name]
    assert _params(getattr(RegistryClient, name)) == _params(op.define("pass"))
    required = [f"<{n}>" for n in op.names if n in op.required]
    assert getattr(client, name)(ALICE, *required) == 7
    body = json.loads(bodies[-1])
    assert body == {"command": name, "kwargs": WIRE[name]}
    assert list(body["kwargs"]) == list(WIRE[name])  # the order too
    # Every argument by name, positional or keyword alike.
    given = {n: f"<{n}>" for n in op.names}
    getattr(client, name)(ALICE, **given)
    assert json.loads(bodies[-1])["kwargs"] == given


# The calls RegistryClient sends again after a broken connection (the previous release's set).
RESENT = {
    "image_get", "image_get_all", "image_member_find", "image_get_by_status", "image_storage_usage",
    "image_quota_usage",
    "ping", "task_get", "task_get_all", "task_get_by_image", "metadef_namespace_get_all",
    "metadef_namespace_get", "metadef_resource_type_get_all", "image_scrub_list",
}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_only_reads_are_sent_again_after_a_broken_connection(sent, monkeypatch, name):
    client, bodies = sent

    def send(conn, body, headers, timeout):
        bodies.append(body)
        if len(bodies) == 1:
            raise ConnectionResetError("reset after sending")
        return 200, b'{"result": {}}'

    monkeypatch.setattr(client, "_send", send)
    op = OPERATIONS[name]
    args = [f"<{n}>" for n in op.names if n in op.required]
    assert (op.kind == READ) == (name in RESENT)
    if name in RESENT:
        assert getattr(client, name)(ALICE, *args) == {}
        assert len(bodies) == 2
    else:
        with pytest.raises(exceptions.RegistryUnavailable):
            getattr(client, name)(ALICE, *args)
        assert len(bodies) == 1


def _rpc(app: RegistryApp, command: str, kwargs: dict) -> tuple[str, dict]:
    return rpc(app, command, kwargs, ALICE)


class _Recorder:
    def __getattr__(self, name):
        return lambda ctx, **kwargs: {"called": name, "kwargs": kwargs}


@pytest.mark.parametrize("name", NAMES)
def test_the_registry_accepts_each_declared_call_as_the_client_sends_it(name):
    status, body = _rpc(RegistryApp(_Recorder()), name, WIRE[name])
    assert status == "200 OK"
    assert body["result"] == {"called": name, "kwargs": WIRE[name]}


@pytest.mark.parametrize(
    ("command", "kwargs", "message"),
    [
        ("image_gets", {}, "Unknown registry command: image_gets"),
        ("__init__", {}, "Unknown registry command: __init__"),
        ("image_get", {}, "Invalid arguments for image_get: missing a required argument: 'image_id'"),
        (
            "image_get",
            {"image_id": "x", "ctx": {}},
            "Invalid arguments for image_get: got an unexpected keyword argument 'ctx'",
        ),
    ],
)
def test_the_registry_refuses_what_is_not_declared(command, kwargs, message):
    status, body = _rpc(RegistryApp(_Recorder()), command, kwargs)
    assert status.startswith("400")
    assert body["error"] == {"type": "BadRequest", "message": message}


@pytest.mark.parametrize("name", [n for n, op in OPERATIONS.items() if op.admin])
def test_admin_only_operations_refuse_other_callers(tmp_path, name):
    from glance_service.db import migrate

    url = f"sqlite:///{tmp_path}/glance.sqlite"
    migrate.sync(url)
    api = DatabaseAPI(url=url)
    try:
        op = OPERATIONS[name]
        with pytest.raises(exceptions.Forbidden):
            getattr(api, name)(ALICE, *["0" * 36 for n in op.names if n in op.required])
    finally:
        api.db.dispose()
