"""The shared core every domain stands on: the ORM base, database, errors, the unit of work,
recording in the ledger, pending effects outside the database, the mail outbox and migrations.
"""
