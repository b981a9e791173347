"""The composition of the domains: the hooks every front end registers, once."""

from __future__ import annotations

from flask import Flask

from governance import wiring
from governance.search.records import delete_lapsed_results
from tests.api.helpers import runtime_of


def test_a_lapsed_basis_asks_the_search_domain_to_delete_its_results() -> None:
    assert wiring.hooks().on_lapse == [delete_lapsed_results]


def test_the_app_registers_the_wiring_hooks_once_at_creation(app: Flask) -> None:
    hooks = runtime_of(app).hooks
    assert hooks.on_lapse == wiring.hooks().on_lapse
    # Every request's units of work carry those very hooks, not a copy made per request.
    assert runtime_of(app).units().hooks is hooks
