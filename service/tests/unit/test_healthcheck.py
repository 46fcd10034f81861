"""``/healthcheck`` (common.healthcheck, healthcheck_plugins): oslo.middleware's
Healthcheck with disable_by_file and our registry/database/store checks, details for admins."""

from __future__ import annotations

import json
import os
import threading
import time
import tomllib
from pathlib import Path

import pytest
import webob
from oslo_config import cfg
from oslo_middleware.healthcheck import pluginbase

from glance_service import exceptions, healthcheck_plugins
from glance_service.common import config, healthcheck

SERVICE = Path(__file__).resolve().parents[2]


# -- CachedProbe ------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _ok():
    return pluginbase.HealthcheckResult(True, "OK")


def test_probe_result_is_reused_within_its_ttl_then_probed_again():
    calls = []
    clock = Clock()

    def probe():
        calls.append(1)
        return _ok()

    cached = healthcheck.CachedProbe("x", probe, reason="X DOWN", ttl=2, timeout=1, clock=clock)
    assert cached.result().available
    assert cached.result().available
    assert len(calls) == 1
    clock.now += 2.5
    assert cached.result().available
    assert len(calls) == 2


def test_a_probe_that_raises_is_unavailable_with_the_reason_never_an_exception():
    def probe():
        raise exceptions.RegistryUnavailable("connection refused")

    result = healthcheck.CachedProbe(
        "glance_registry", probe, reason="REGISTRY UNAVAILABLE", ttl=0, timeout=1
    ).result()
    assert (result.available, result.reason) == (False, "REGISTRY UNAVAILABLE")
    assert "connection refused" in result.details


def test_a_hung_probe_answers_unavailable_after_the_timeout_and_runs_once():
    release = threading.Event()
    started = []

    def probe():
        started.append(1)
        release.wait(10)
        return _ok()

    cached = healthcheck.CachedProbe("glance_store", probe, reason="STORE UNAVAILABLE", ttl=0, timeout=0.2)
    t0 = time.monotonic()
    first = cached.result()
    assert time.monotonic() - t0 < 2
    assert (first.available, first.reason) == (False, "STORE UNAVAILABLE")
    assert "within 0.2 s" in first.details
    cached.result()  # still hung: no second probe thread
    assert len(started) == 1
    release.set()
    deadline = time.monotonic() + 5
    while not cached.result().available:
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- the file store check ---------------------------------------------------------------------
def test_file_store_check(tmp_path):
    good = tmp_path / "images"
    good.mkdir()
    assert healthcheck_plugins.check_file_dirs([str(good)], "file").available
    assert os.listdir(good) == []  # the probe file is gone
    missing = healthcheck_plugins.check_file_dirs([str(good), str(tmp_path / "gone")], "file")
    assert (missing.available, missing.reason) == (False, "STORE UNAVAILABLE")
    assert "gone is not a directory" in missing.details
    (tmp_path / "afile").write_text("")
    assert not healthcheck_plugins.check_file_dirs([str(tmp_path / "afile")], "file").available


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_file_store_check_unwritable(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        result = healthcheck_plugins.check_file_dirs([str(ro)], "file")
    finally:
        ro.chmod(0o700)
    assert not result.available and "cannot create a file" in result.details


# -- the middleware -----------------------------------------------------------------------------
class Data:
    def __init__(self):
        self.fail = False
        self.pings = 0

    def ping(self, ctx):
        self.pings += 1
        if self.fail:
            raise exceptions.ServiceUnavailable("The image database is unreachable: OperationalError")
        return {"database": "ok"}


def _conf(tmp_path, **healthcheck_opts) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf.register_opts(config.paste_deploy_opts, group="paste_deploy")
    conf([], project="glance-healthcheck-test", default_config_files=[])
    conf.set_override("flavor", "", group="paste_deploy")  # trusted headers
    healthcheck.register_opts(conf)
    from oslo_middleware.healthcheck import opts as oslo_opts

    conf.register_opts(oslo_opts.HEALTHCHECK_OPTS, group="healthcheck")
    conf.register_opts(oslo_opts.DISABLE_BY_FILE_OPTS, group="healthcheck")
    conf.set_override("check_cache_seconds", 0, group="healthcheck")
    conf.set_override("disable_by_file_path", str(tmp_path / "healthcheck_disable"), group="healthcheck")
    for key, value in healthcheck_opts.items():
        conf.set_override(key, value, group="healthcheck")
    return conf


def _inner(environ, start_response):
    start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
    return [b"the service"]


def registry_app(tmp_path, data=None, **opts):
    conf = _conf(tmp_path, **opts)
    data = data or Data()
    return healthcheck.build(
        _inner, conf, healthcheck.Resources(conf, "glance-registry", data_api=data)
    ), data


def get(app, path="/healthcheck", method="GET", headers=None, remote="127.0.0.1"):
    req = webob.Request.blank(path, method=method, headers=headers or {})
    req.remote_addr = remote
    return req.get_response(app)


def test_other_paths_go_to_the_service(tmp_path):
    app, _ = registry_app(tmp_path)
    assert get(app, "/rpc").status_int == 418
    assert get(app, "/healthcheck/more").status_int == 418


def test_registry_without_backends_configured_still_checks_its_database(tmp_path):
    app, data = registry_app(tmp_path)
    resp = get(app)
    assert (resp.status_int, resp.text) == (200, "OK")
    assert data.pings == 1
    data.fail = True
    resp = get(app)
    assert (resp.status_int, resp.text) == (503, "DATABASE UNAVAILABLE")


def test_disable_by_file_drains_and_removing_it_restores(tmp_path):
    app, _ = registry_app(tmp_path, backends=["disable_by_file", "glance_database"])
    flag = tmp_path / "healthcheck_disable"
    flag.write_text("")
    resp = get(app)
    assert (resp.status_int, resp.text) == (503, "DISABLED BY FILE")
    assert get(app, method="HEAD").status_int == 503
    assert get(app, "/rpc").status_int == 418  # still serves what it is sent
    flag.unlink()
    resp = get(app)
    assert (resp.status_int, resp.text) == (200, "OK")
    assert get(app, method="HEAD").status_int == 204  # oslo.middleware's (and upstream Glance's) HEAD


def test_several_healthy_backends_answer_one_ok_and_failures_only_list_themselves(tmp_path):
    app, data = registry_app(tmp_path, backends=["disable_by_file", "glance_database", "glance_store"])
    assert get(app).text == "OK"
    data.fail = True
    (tmp_path / "healthcheck_disable").write_text("")
    assert get(app).text == "DISABLED BY FILE\nDATABASE UNAVAILABLE"
    body = get(app, headers={"Accept": "application/json"}).json
    assert body == {"detailed": False, "reasons": ["DISABLED BY FILE", "DATABASE UNAVAILABLE", "OK"]}


DETAILED = {"Accept": "application/json"}


def _is_detailed(resp) -> bool:
    body = json.loads(resp.text)
    return body["detailed"] is True and "threads" in body


def test_details_only_for_an_admin(tmp_path):
    app, _ = registry_app(tmp_path, backends=["glance_database"], detailed=True)
    member = get(app, headers={**DETAILED, "X-Roles": "reader,member", "X-Project-Id": "p"})
    assert member.status_int == 200 and not _is_detailed(member)
    assert not _is_detailed(
        get(app, "/healthcheck?detailed", headers={"X-Roles": "member", "X-Project-Id": "p"})
    )
    admin = get(app, headers={**DETAILED, "X-Roles": "admin", "X-Project-Id": "p"})
    assert _is_detailed(admin)
    reasons = json.loads(admin.text)["reasons"]
    assert reasons[0]["details"] == "database answered"
    # ?detailed asks for the JSON details
    assert _is_detailed(get(app, "/healthcheck?detailed", headers={"X-Roles": "admin", "X-Project-Id": "p"}))
    # the plain answer stays plain for everyone
    assert get(app, headers={"X-Roles": "admin", "X-Project-Id": "p"}).text == "OK"


def test_no_details_when_detailed_is_off_even_for_an_admin(tmp_path):
    app, _ = registry_app(tmp_path, backends=["glance_database"], detailed=False)
    admin = {"X-Roles": "admin", "X-Project-Id": "p"}
    assert get(app, "/healthcheck?detailed", headers=admin).text == "OK"
    assert not _is_detailed(get(app, headers={**admin, **DETAILED}))


def test_allowed_source_ranges_callers_see_details_others_are_not_answered(tmp_path):
    app, _ = registry_app(
        tmp_path, backends=["glance_database"], detailed=True, allowed_source_ranges=["198.51.100.0/24"]
    )
    inside = get(app, headers={**DETAILED, "X-Roles": "member", "X-Project-Id": "p"}, remote="198.51.100.7")
    assert _is_detailed(inside)
    # oslo.middleware: a caller from elsewhere is not answered by the healthcheck
    assert get(app, headers=DETAILED, remote="203.0.113.9").status_int == 418


def test_details_with_keystone_need_a_valid_admin_token(tmp_path, monkeypatch):
    from glance_service.common import auth

    conf = _conf(tmp_path, backends=["glance_database"], detailed=True)
    seen = []

    def fake_with_auth(app, conf, service):
        def validate(environ, start_response):
            seen.append(environ.get("HTTP_X_AUTH_TOKEN"))
            roles = {"admin-token": "admin", "member-token": "member"}.get(environ.get("HTTP_X_AUTH_TOKEN"))
            if roles is None:
                start_response("401 Unauthorized", [])
                return [b"no"]
            environ["HTTP_X_ROLES"] = roles
            environ[auth.CONTEXT_KEY] = __import__("glance_service.context").context.from_environ(environ)
            return app(environ, start_response)

        return validate

    monkeypatch.setattr(auth, "with_auth", fake_with_auth)
    app = healthcheck.build(_inner, conf, healthcheck.Resources(conf, "glance-registry", data_api=Data()))
    assert not _is_detailed(get(app, headers=DETAILED))
    assert not _is_detailed(get(app, headers={**DETAILED, "X-Auth-Token": "bogus"}))
    assert not _is_detailed(get(app, headers={**DETAILED, "X-Auth-Token": "member-token"}))
    assert _is_detailed(get(app, headers={**DETAILED, "X-Auth-Token": "admin-token"}))
    # a plain check never validates a token
    seen.clear()
    get(app, headers={"X-Auth-Token": "admin-token"})
    assert seen == []


# -- the plugins' applicability ------------------------------------------------------------------
def _plugin(cls, tmp_path, service, data_api=None, stores=None, data_api_mode="registry"):
    conf = _conf(tmp_path)
    conf.register_opt(cfg.StrOpt("data_api", default=data_api_mode))
    res = healthcheck.Resources(conf, service, data_api=data_api, stores=stores)
    return cls(conf, {healthcheck.RESOURCES_KEY: res})


def test_checks_that_do_not_apply_say_ok(tmp_path):
    reg = _plugin(healthcheck_plugins.RegistryCheck, tmp_path, "glance-api", data_api_mode="database")
    assert reg.healthcheck(9292).available and "data_api = database" in reg.healthcheck(9292).details
    db = _plugin(healthcheck_plugins.DatabaseCheck, tmp_path, "glance-api", data_api=Data())
    assert db.healthcheck(9292).available and "data_api = registry" in db.healthcheck(9292).details
    store = _plugin(healthcheck_plugins.StoreCheck, tmp_path, "glance-registry")
    assert store.healthcheck(9191).available


def test_database_check_of_an_api_in_database_mode(tmp_path):
    data = Data()
    db = _plugin(
        healthcheck_plugins.DatabaseCheck, tmp_path, "glance-api", data_api=data, data_api_mode="database"
    )
    assert db.healthcheck(9292).available
    data.fail = True
    result = db.healthcheck(9292)
    assert (result.available, result.reason) == (False, "DATABASE UNAVAILABLE")


def test_registry_check_fails_fast_when_nothing_listens(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    conf = _conf(tmp_path)
    conf.register_opt(cfg.StrOpt("data_api", default="registry"))
    from glance_service.registry import client

    client.register_opts(conf)
    conf.set_override("registry_port", port)
    res = healthcheck.Resources(conf, "glance-api")
    reg = healthcheck_plugins.RegistryCheck(conf, {healthcheck.RESOURCES_KEY: res})
    t0 = time.monotonic()
    result = reg.healthcheck(9292)
    assert time.monotonic() - t0 < 3
    assert (result.available, result.reason) == (False, "REGISTRY UNAVAILABLE")


# -- packaging --------------------------------------------------------------------------------
def test_our_backends_are_registered_as_oslo_middleware_healthcheck_entry_points():
    project = tomllib.loads((SERVICE / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]["oslo.middleware.healthcheck"]
    assert declared == healthcheck.BUILTIN_BACKENDS
    for target in declared.values():
        module, _, name = target.partition(":")
        cls = getattr(__import__(module, fromlist=[name]), name)
        assert issubclass(cls, pluginbase.HealthcheckBaseExtension)


def test_details_do_not_scan_the_heap_for_greenlets():
    """oslo.middleware's greenlet scan (isinstance over gc.get_objects()) raised ReferenceError on
    a dead weakref proxy in the heap: the detailed answer was a 500 in the full suite."""
    import weakref

    class Thing:
        pass

    thing = Thing()
    dead = [weakref.proxy(thing)]
    del thing
    assert dead and healthcheck.GlanceHealthcheck._get_greenstacks() == []
