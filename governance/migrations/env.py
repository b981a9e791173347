"""Alembic environment: runs online against the connection or URL the caller configured."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

# Every domain's models, so that Base.metadata holds all their tables.
from governance.core import mail  # noqa: F401
from governance.core.db import make_engine
from governance.core.orm import Base
from governance.gallery import models as gallery_models  # noqa: F401
from governance.identity import models as identity_models  # noqa: F401
from governance.legal_basis import models as legal_basis_models  # noqa: F401
from governance.search import models as search_models  # noqa: F401
from ledger.storage import metadata as ledger_metadata

target_metadata = [ledger_metadata, Base.metadata]


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


run_migrations_online()
