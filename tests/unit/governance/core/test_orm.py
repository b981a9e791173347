"""The ORM base: CHECK constraints spelled from their values, and timestamps kept aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from governance.core.orm import UtcDateTime, check_one_of, one_of

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Status(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (Status, "status IN ('active', 'suspended')"),
        ([Status.SUSPENDED, Status.ACTIVE], "status IN ('suspended', 'active')"),
        (["blocked", "allowed"], "status IN ('blocked', 'allowed')"),
        ([Status.ACTIVE, "gone"], "status IN ('active', 'gone')"),
        (["o'brien"], "status IN ('o''brien')"),
    ],
)
def test_one_of_lists_the_values_in_their_order(values: list[StrEnum | str], expected: str) -> None:
    assert one_of("status", values) == expected


def test_a_one_of_check_is_named_after_its_column_and_refuses_other_values() -> None:
    check = check_one_of("status", Status)
    assert check.name == "status"
    table = Table(
        "things",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("status", String(16), nullable=False),
        check,
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table).values(status="suspended"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(table).values(status="deleted"))
    engine.dispose()


def test_utc_datetime_binds_aware_times_as_utc_and_refuses_naive_ones() -> None:
    column = UtcDateTime()
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        assert column.process_bind_param(paris, dialect) == NOW
        assert column.process_bind_param(None, dialect) is None
        with pytest.raises(ValueError, match="naive"):
            column.process_bind_param(NOW.replace(tzinfo=None), dialect)


def test_utc_datetime_reads_times_back_aware_utc() -> None:
    column = UtcDateTime()
    naive = column.process_result_value(NOW.replace(tzinfo=None), sqlite.dialect())
    assert naive == NOW and naive is not None and naive.tzinfo == UTC
    shifted = column.process_result_value(
        NOW.astimezone(timezone(timedelta(hours=-5))), postgresql.dialect()
    )
    assert shifted == NOW and shifted is not None and shifted.tzinfo == UTC
    assert column.process_result_value(None, sqlite.dialect()) is None


def test_a_round_trip_through_sqlite_keeps_the_instant() -> None:
    table = Table(
        "stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcDateTime())
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table).values(id=1, at=NOW.astimezone(UTC)))
        [at] = connection.execute(select(table.c.at)).scalars()
    assert at == NOW and at.tzinfo == UTC
    engine.dispose()
