"""Listings: one page of a query's rows as values, with the total count of matching rows.

Every listing takes the page asked for as its ``Window`` keywords (``limit``, ``offset``), pages
with ``paginate`` and narrows by the filters its caller gave (``filtered_by``: an absent filter
is no filter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypedDict, TypeVar, Unpack

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["Page", "Window", "filtered_by", "paginate"]

T = TypeVar("T")
M = TypeVar("M")
V = TypeVar("V")


class Window(TypedDict):
    """The page of a listing asked for: at most ``limit`` objects, after the first ``offset``."""

    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, with the total count of matching objects."""

    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(
    session: Session, query: Select[M], info: Callable[[M], T], **window: Unpack[Window]
) -> Page[T]:
    """The ``window`` of ``query``'s rows (in its order), as values, with the total count."""
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(query.limit(window["limit"]).offset(window["offset"]))
    return Page([info(r) for r in rows], total, **window)


def filtered_by(query: Select[M], column: InstrumentedAttribute[V], value: V | None) -> Select[M]:
    """``query`` narrowed to the rows whose ``column`` is ``value``; the query itself when
    ``value`` is None (the caller asked for no such filter)."""
    return query if value is None else query.where(column == value)
