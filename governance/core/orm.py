"""The ORM base every domain's models share: deterministic constraint names and aware UTC times.

Statuses and roles are short strings guarded by CHECK constraints (portable across SQLite and
PostgreSQL); secrets are stored only as SHA-256 digests; every timestamp is aware UTC. The
ledger's tables live in ``ledger.storage``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    MetaData,
    Table,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["NAMING", "Base", "UtcDateTime", "check_one_of", "one_of", "table_of", "value_of"]

V = TypeVar("V", bound="DataclassInstance")

# Deterministic constraint names, so migrations name what they create on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def one_of(column: str, values: Iterable[StrEnum | str]) -> str:
    """A CHECK constraint's SQL: ``column`` is one of ``values``, in their order."""
    quoted = ("'" + str(value).replace("'", "''") + "'" for value in values)
    return f"{column} IN ({', '.join(quoted)})"


def check_one_of(column: str, values: Iterable[StrEnum | str]) -> CheckConstraint:
    """The CHECK constraint that keeps ``column`` to a closed set (a ``StrEnum``'s values, in
    their order), named after the column: ``ck_<table>_<column>``."""
    return CheckConstraint(one_of(column, values), name=column)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for statements built once at import (``__table__`` is typed as
    any ``FromClause``; a declarative model's is always a ``Table``)."""
    return cast(Table, model.__table__)


def value_of(cls: type[V], row: object, **fields: Any) -> V:
    """The value of type ``cls`` a row reads as: each field is the row's attribute of the same
    name, unless ``fields`` gives it (what the row holds in another form)."""
    return cls(
        **{
            f.name: fields[f.name] if f.name in fields else getattr(row, f.name)
            for f in dataclasses.fields(cls)
        }
    )


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
