"""common.auth.LocalTokenCache: what keystonemiddleware confirmed is reused for a while, and
nothing a client sends besides its token reaches the context on a hit."""

from __future__ import annotations

import datetime

from glance_service.common import auth


class FakeAuthToken:
    """Stands in for keystonemiddleware: confirms tokens "good*" as project p1 (member)."""

    def __init__(self, inner, expires_in: float = 3600):
        self.inner = inner
        self.calls = 0
        self.expires_in = expires_in

    def __call__(self, environ, start_response):
        self.calls += 1
        for key in [k for k in environ if k.startswith("HTTP_X_") and k != "HTTP_X_AUTH_TOKEN"]:
            if key not in ("HTTP_X_OPENSTACK_REQUEST_ID",):
                del environ[key]
        if environ.get("HTTP_X_AUTH_TOKEN", "").startswith("good"):
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.expires_in)
            environ.update(
                {
                    "HTTP_X_IDENTITY_STATUS": "Confirmed",
                    "HTTP_X_USER_ID": "u1",
                    "HTTP_X_PROJECT_ID": "p1",
                    "HTTP_X_ROLES": "member,reader",
                    "keystone.token_info": {
                        "token": {"expires_at": expires.isoformat().replace("+00:00", "Z")}
                    },
                }
            )
        else:
            environ["HTTP_X_IDENTITY_STATUS"] = "Invalid"
        return self.inner(environ, start_response)


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def build(seconds=30, size=10, expires_in=3600):
    seen = []

    def app(environ, start_response):
        seen.append(environ[auth.CONTEXT_KEY])
        start_response("200 OK", [])
        return [b"ok"]

    clock = Clock()
    cache = auth.LocalTokenCache(None, app, seconds, size, clock=clock)
    fake = FakeAuthToken(cache.remember(auth.ContextMiddleware(app, require_confirmed=True)), expires_in)
    cache.auth_app = fake
    return cache, fake, seen, clock


def call(cache, token, **headers):
    environ = {"HTTP_X_AUTH_TOKEN": token, "HTTP_X_OPENSTACK_REQUEST_ID": "req-1", **headers}
    environ.setdefault("openstack.request_id", "req-local")
    status = []
    body = b"".join(cache(environ, lambda s, h, e=None: status.append(s)))
    return status[0], body


def test_second_request_skips_validation_with_the_same_identity():
    cache, fake, seen, _ = build()
    assert call(cache, "good")[0] == "200 OK"
    assert call(cache, "good")[0] == "200 OK"
    assert fake.calls == 1
    first, second = seen
    assert (second.user_id, second.project_id, second.roles, second.auth_token) == (
        "u1",
        "p1",
        ["member", "reader"],
        "good",
    )
    assert second.is_admin is False and first.project_id == second.project_id


def test_a_cache_hit_keeps_the_request_ids():
    cache, fake, seen, _ = build()
    call(cache, "good")
    call(cache, "good", **{"openstack.request_id": "req-2nd", "openstack.global_request_id": "req-g"})
    assert fake.calls == 1
    assert (seen[-1].request_id, seen[-1].global_request_id) == ("req-2nd", "req-g")


def test_client_headers_cannot_change_a_cached_identity():
    cache, _, seen, _ = build()
    call(cache, "good")
    call(cache, "good", HTTP_X_ROLES="admin", HTTP_X_PROJECT_ID="other", HTTP_X_IDENTITY_STATUS="Confirmed")
    assert seen[-1].roles == ["member", "reader"] and seen[-1].project_id == "p1"
    assert seen[-1].is_admin is False


def test_invalid_tokens_are_never_cached():
    cache, fake, seen, _ = build()
    assert call(cache, "bad")[0].startswith("401")
    assert call(cache, "bad")[0].startswith("401")
    assert fake.calls == 2 and seen == []


def test_entries_expire_after_the_ttl_and_never_outlive_the_token():
    cache, fake, _, clock = build(seconds=30)
    call(cache, "good")
    clock.now += 31
    call(cache, "good")
    assert fake.calls == 2

    cache, fake, _, clock = build(seconds=30, expires_in=5)
    call(cache, "good")
    clock.now += 6
    call(cache, "good")
    assert fake.calls == 2


def test_service_tokens_always_go_to_keystonemiddleware():
    cache, fake, _, _ = build()
    call(cache, "good")
    call(cache, "good", HTTP_X_SERVICE_TOKEN="svc")
    assert fake.calls == 2


def test_size_bound_forgets_the_least_recently_used():
    cache, fake, _, _ = build(size=2)
    for token in ("good1", "good2", "good1", "good3"):  # good2 is the least recently used
        call(cache, token)
    assert fake.calls == 3
    call(cache, "good1")
    assert fake.calls == 3
    call(cache, "good2")
    assert fake.calls == 4
