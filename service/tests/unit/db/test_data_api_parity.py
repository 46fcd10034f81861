"""The data API is written three times (the contract, the database, the registry client): their
signatures must agree, or a call that works with ``data_api = database`` breaks over the registry."""

from __future__ import annotations

import inspect

import pytest

from glance_service.db.api import DatabaseAPI
from glance_service.db.interface import DataAPI
from glance_service.registry.client import RegistryClient

METHODS = sorted(
    name for name, _ in inspect.getmembers(DataAPI, inspect.isfunction) if not name.startswith("_")
)


def _params(func) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


def test_the_contract_has_methods():
    assert "image_get" in METHODS and len(METHODS) > 20


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("impl", [DatabaseAPI, RegistryClient], ids=["database", "registry"])
def test_implementation_matches_the_contract(impl, name):
    assert hasattr(impl, name), f"{impl.__name__} lacks {name}"
    assert _params(getattr(impl, name)) == _params(getattr(DataAPI, name))
