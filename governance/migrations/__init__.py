"""Alembic migrations for every table (ledger and governance), run by ``facewarden db upgrade``."""
