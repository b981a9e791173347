"""The offence allowlist: Annex II by default, narrowed or extended, refused when malformed."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask

from api.app import create_app
from api.settings import ConfigError, Settings
from governance.legal_basis.offences import ANNEX_II, parse_offence_categories


def test_annex_ii_has_its_sixteen_offences_with_unique_slugs() -> None:
    assert len(ANNEX_II) == 16
    assert len({c.slug for c in ANNEX_II}) == 16
    assert [c.slug for c in parse_offence_categories("annex_ii")] == [c.slug for c in ANNEX_II]


@pytest.mark.parametrize(
    ("spec", "slugs"),
    [
        ("terrorism, rape", ["terrorism", "rape"]),
        ("annex_ii,fraud=Serious fraud", [c.slug for c in ANNEX_II] + ["fraud"]),
        ("cybercrime=Attacks on information systems", ["cybercrime"]),
    ],
)
def test_the_allowlist_narrows_or_extends_annex_ii(spec: str, slugs: list[str]) -> None:
    catalogue = parse_offence_categories(spec)
    assert [c.slug for c in catalogue] == slugs
    assert "fraud" not in catalogue or catalogue.label("fraud") == "Serious fraud"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("shoplifting", "not an Annex II category"),
        ("Terrorism", "not a slug"),
        ("rape,rape", "listed twice"),
        ("annex_ii,terrorism", "listed twice"),
        ("fraud=", "needs a printable label"),
        ("fraud=Bad\x07label", "needs a printable label"),
    ],
)
def test_a_bad_allowlist_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_offence_categories(spec)


def test_the_app_refuses_to_start_with_a_bad_allowlist(app: Flask, settings: Settings) -> None:
    del app  # the shared app created the key file and database this one needs
    broken = dataclasses.replace(settings, offence_categories="annex_ii,shoplifting")
    with pytest.raises(ConfigError, match="FACEWARDEN_OFFENCE_CATEGORIES"):
        create_app(broken)
