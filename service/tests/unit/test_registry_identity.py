"""The signed identity glance-api sends glance-registry (registry/identity.py): pure logic."""

from __future__ import annotations

import pytest

from glance_service.context import RequestContext
from glance_service.registry import identity

BODY = b'{"command": "image_get", "kwargs": {"image_id": "i"}}'


def ctx() -> RequestContext:
    return RequestContext(
        user_id="u1",
        project_id="p1",
        roles=["member", "reader"],
        user_domain_id="default",
        project_domain_id="default",
        service_roles=["service"],
    )


def signed(secret="s", body=BODY, now=1000.0):
    headers = identity.sign(secret, ctx(), body, now=now)
    return headers[identity.IDENTITY_HEADER], headers[identity.SIGNATURE_HEADER]


def test_round_trip_gives_the_same_context():
    claims = identity.verify("s", *signed(), BODY, max_age=300, now=1010.0)
    got = identity.context_from_claims(claims, "req-1")
    want = ctx()
    assert (got.user_id, got.project_id, got.roles, got.service_roles) == (
        want.user_id,
        want.project_id,
        want.roles,
        want.service_roles,
    )
    assert (got.user_domain_id, got.project_domain_id, got.request_id) == ("default", "default", "req-1")
    assert got.is_admin is False and got.auth_token is None


def test_admin_role_makes_an_admin_context():
    headers = identity.sign("s", RequestContext.admin(), BODY, now=5.0)
    claims = identity.verify(
        "s", headers[identity.IDENTITY_HEADER], headers[identity.SIGNATURE_HEADER], BODY, 60, 5.0
    )
    assert identity.context_from_claims(claims, "r").is_admin is True


@pytest.mark.parametrize(
    "secret, body, now",
    [
        ("other", BODY, 1000.0),  # another secret
        ("s", BODY + b" ", 1000.0),  # another body
        ("s", BODY, 1000.0 + 301),  # too old
        ("s", BODY, 1000.0 - 301),  # from the future (clock skew beyond the window)
    ],
)
def test_refused(secret, body, now):
    identity_value, signature = signed()
    with pytest.raises(identity.InvalidIdentity):
        identity.verify(secret, identity_value, signature, body, max_age=300, now=now)


def test_identity_swapped_under_a_valid_signature_is_refused():
    _, signature = signed()
    admin_identity = identity.sign("s", RequestContext.admin(), BODY, now=1000.0)[identity.IDENTITY_HEADER]
    with pytest.raises(identity.InvalidIdentity):
        identity.verify("s", admin_identity, signature, BODY, max_age=300, now=1000.0)


def test_garbage_is_refused_not_an_error():
    with pytest.raises(identity.InvalidIdentity):
        identity.verify("s", "!!!", "", BODY, max_age=300)


def test_the_mac_is_hmac_sha256_over_identity_and_body_digest():
    """The wire format stays what the docstring says (an older glance-api or registry on the
    other side of a rolling upgrade checks the same value)."""
    import hashlib
    import hmac

    value, signature = signed()
    message = value.encode() + b"\n" + hashlib.sha256(BODY).hexdigest().encode()
    assert signature == hmac.new(b"s", message, hashlib.sha256).hexdigest()
