"""The image view with property protections: unchanged (the same serialiser, no work added) when
they are off; properties the caller may not read left out when they are on."""

from __future__ import annotations

import types

from glance_service.api import images
from glance_service.api.image_views import ImageView
from glance_service.context import RequestContext
from glance_service.images import property_protections as pp

IMAGE = {"id": "b2173dd3-7ad6-4362-baa6-a68bce3565cb", "properties": {"x_open": "1", "x_secret": "2"}}


def services(protections=None):
    return types.SimpleNamespace(
        view=ImageView(False, False), stores=None, protections=protections, conf=None
    )


def test_off_is_the_plain_view():
    svc = services()
    assert images._view(svc, RequestContext(project_id="p")) is svc.view


def test_on_hides_what_the_caller_may_not_read(tmp_path):
    path = tmp_path / "p.conf"
    path.write_text("[x_open]\ncreate = @\nread = @\nupdate = @\ndelete = @\n")
    svc = services(pp.PropertyRules(pp.load_rules(str(path), "roles"), "roles"))
    shown = images._view(svc, RequestContext(project_id="p", roles=["admin"]))(IMAGE)
    assert shown["x_open"] == "1"
    assert "x_secret" not in shown
    # The record itself is not changed.
    assert IMAGE["properties"] == {"x_open": "1", "x_secret": "2"}
