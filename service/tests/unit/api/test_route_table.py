"""The route table is checked when it is built: a handler that does not exist fails the build
(and so glance-api's start-up and this test), never a request with a 503."""

from __future__ import annotations

import inspect

import pytest

from glance_service.api import routes as routes_mod
from glance_service.api.router import Route, Router
from glance_service.api.routes import routes


def _table() -> list[Route]:
    return routes()


def test_every_route_resolves_to_a_function_taking_req_svc_ctx():
    table = _table()
    assert table
    for route in table:
        assert route.handlers, route.template
        for method, handler in route.handlers.items():
            assert callable(handler), f"{method} {route.template}: {handler!r}"
            assert not isinstance(handler, str), f"{method} {route.template}: {handler!r}"
            params = list(inspect.signature(handler).parameters)
            assert params[:3] == ["req", "svc", "ctx"], f"{method} {route.template}: {params}"


def test_every_url_variable_is_a_parameter_of_its_handlers():
    for route in _table():
        for method, handler in route.handlers.items():
            sig = inspect.signature(handler)
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
            for var in route.pattern.groupindex:
                assert takes_any or var in sig.parameters, f"{method} {route.template}: no {var}"


def test_every_feature_module_brings_its_routes():
    templates = {route.template for route in _table()}
    for module in routes_mod.FEATURE_MODULES:
        mine = {route.template for route in module.routes()}
        assert mine, module.__name__
        assert mine <= templates, module.__name__


@pytest.mark.parametrize(
    "bad",
    [
        "glance_service.api.image_data:downlaod",  # a typo, once loaded by name at the first request
        "glance_service.api.no_such_module:handler",
        None,
        42,
    ],
)
def test_a_handler_that_is_not_a_function_fails_the_build(bad):
    with pytest.raises(TypeError, match=r"GET /v2/broken"):
        Route("/v2/broken", {"GET": bad}, "GET")


def test_a_method_that_is_not_an_http_method_fails_the_build():
    def handler(req, svc, ctx):
        return None

    with pytest.raises(ValueError, match=r"get /v2/broken"):
        Route("/v2/broken", {"get": handler}, "GET")


def test_two_routes_with_one_template_fail_the_build():
    def handler(req, svc, ctx):
        return None

    table = [Route("/v2/twice", {"GET": handler}, "GET"), Route("/v2/twice", {"PUT": handler}, "PUT")]
    with pytest.raises(ValueError, match=r"/v2/twice"):
        Router(table, services=None)
