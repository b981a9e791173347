"""Offence categories a legal basis may name: an allowlist, by default Annex II of the EU AI Act.

Annex II of Regulation (EU) 2024/1689 lists the criminal offences for which Article 5(1)(h)(iii)
allows remote biometric identification. Each gets a stable slug (stored and recorded in the
ledger) and its label. Operators narrow or extend the list with ``FACEWARDEN_OFFENCE_CATEGORIES``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "ANNEX_II",
    "ANNEX_II_KEYWORD",
    "OffenceCatalogue",
    "OffenceCategory",
    "parse_offence_categories",
]

ANNEX_II_KEYWORD = "annex_ii"
_SLUG = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_MAX_LABEL = 200


@dataclass(frozen=True, slots=True)
class OffenceCategory:
    """One allowed category: ``slug`` is what is stored and recorded, ``label`` what people read."""

    slug: str
    label: str


# Annex II, in its order; the slugs never change once released (the ledger records them).
ANNEX_II: tuple[OffenceCategory, ...] = (
    OffenceCategory("terrorism", "Terrorism"),
    OffenceCategory("trafficking_in_human_beings", "Trafficking in human beings"),
    OffenceCategory(
        "child_sexual_exploitation",
        "Sexual exploitation of children, and child sexual abuse material",
    ),
    OffenceCategory(
        "drug_trafficking", "Illicit trafficking in narcotic drugs or psychotropic substances"
    ),
    OffenceCategory(
        "weapons_trafficking", "Illicit trafficking in weapons, munitions or explosives"
    ),
    OffenceCategory("murder_grievous_bodily_injury", "Murder, grievous bodily injury"),
    OffenceCategory("organ_trade", "Illicit trade in human organs or tissue"),
    OffenceCategory(
        "nuclear_materials_trafficking", "Illicit trafficking in nuclear or radioactive materials"
    ),
    OffenceCategory("kidnapping_hostage_taking", "Kidnapping, illegal restraint or hostage-taking"),
    OffenceCategory(
        "icc_crimes", "Crimes within the jurisdiction of the International Criminal Court"
    ),
    OffenceCategory("aircraft_ship_seizure", "Unlawful seizure of aircraft or ships"),
    OffenceCategory("rape", "Rape"),
    OffenceCategory("environmental_crime", "Environmental crime"),
    OffenceCategory("organised_armed_robbery", "Organised or armed robbery"),
    OffenceCategory("sabotage", "Sabotage"),
    OffenceCategory(
        "criminal_organisation",
        "Participation in a criminal organisation involved in one or more of the offences above",
    ),
)
_ANNEX_II_BY_SLUG = {c.slug: c for c in ANNEX_II}


@dataclass(frozen=True, slots=True)
class OffenceCatalogue:
    """The categories this deployment allows, in the configured order."""

    categories: tuple[OffenceCategory, ...]

    @property
    def by_slug(self) -> Mapping[str, OffenceCategory]:
        return {c.slug: c for c in self.categories}

    def label(self, slug: str) -> str:
        """The label of ``slug``; a category since removed from the list keeps its slug."""
        category = self.by_slug.get(slug)
        return category.label if category else slug

    def __contains__(self, slug: object) -> bool:
        return any(c.slug == slug for c in self.categories)

    def __iter__(self) -> Iterator[OffenceCategory]:
        return iter(self.categories)


def parse_offence_categories(spec: str) -> OffenceCatalogue:
    """Parse a comma-separated allowlist.

    Each item is ``annex_ii`` (every Annex II category), one Annex II slug (to allow only some),
    or ``slug=Label`` (a category national law adds). Example: ``annex_ii,fraud=Serious fraud``.
    Raises ValueError naming the first bad item.
    """
    chosen: dict[str, OffenceCategory] = {}

    def add(category: OffenceCategory) -> None:
        if category.slug in chosen:
            raise ValueError(f"offence category {category.slug!r} is listed twice")
        chosen[category.slug] = category

    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if item == ANNEX_II_KEYWORD:
            for category in ANNEX_II:
                add(category)
            continue
        slug, sep, label = (part.strip() for part in item.partition("="))
        if not _SLUG.match(slug):
            raise ValueError(
                f"offence category {slug!r} is not a slug (lower-case letters, digits, '_')"
            )
        if not sep:
            if slug not in _ANNEX_II_BY_SLUG:
                raise ValueError(
                    f"{slug!r} is not an Annex II category: give its label as {slug}=Label"
                )
            add(_ANNEX_II_BY_SLUG[slug])
            continue
        if not label or len(label) > _MAX_LABEL or not label.isprintable():
            raise ValueError(f"offence category {slug!r} needs a printable label (1-200 chars)")
        add(OffenceCategory(slug, label))
    if not chosen:
        raise ValueError("the offence category allowlist is empty")
    return OffenceCatalogue(tuple(chosen.values()))
