"""What someone with write access to the database, and no signing key, can do to the ledger.

``cut`` is the attack of docs/ledger.md ("Signer state"): drop the append-only triggers,
delete the newest entries with their tree nodes and checkpoints, and put the triggers back, so
that the tables look untouched and the next append would reuse the deleted sequence numbers.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, select, text, tuple_

from ledger import storage

__all__ = ["cut"]


def _drop_guards(conn: Connection, dialect: str) -> None:
    for table in storage.LEDGER_TABLES:
        if dialect == "sqlite":
            names = [f"{table}_no_update", f"{table}_no_delete"]
            statements = [f"DROP TRIGGER {name}" for name in names]
        else:
            statements = [
                f"DROP TRIGGER {table}_append_only ON {table}",
                f"DROP TRIGGER {table}_no_truncate ON {table}",
            ]
        for statement in statements:
            conn.execute(text(statement))


def cut(engine: Engine, keep: int) -> int:
    """Delete every ledger entry from seq ``keep`` on, the tree nodes that cover any of them and
    the checkpoints of more than ``keep`` entries, with the triggers dropped and put back.
    Returns how many entries were deleted."""
    dialect = engine.dialect.name
    with engine.begin() as conn:
        _drop_guards(conn, dialect)
        gone = conn.execute(delete(storage.entries).where(storage.entries.c.seq >= keep)).rowcount
        nodes = conn.execute(select(storage.nodes.c.level, storage.nodes.c.idx)).all()
        # A node covers leaves [idx << level, (idx + 1) << level).
        covering = [(lv, i) for lv, i in nodes if (i + 1) << lv > keep]
        if covering:
            conn.execute(
                delete(storage.nodes).where(
                    tuple_(storage.nodes.c.level, storage.nodes.c.idx).in_(covering)
                )
            )
        conn.execute(delete(storage.checkpoints).where(storage.checkpoints.c.size > keep))
        for statement in storage.guard_ddl(dialect):
            conn.execute(text(statement))
    return int(gone)
