"""Platform administrators are created from the operator's command line, never over HTTP.

``facewarden admin create --email EMAIL --name NAME`` calls ``create_admin`` and prints the new
API key once; the act is recorded as ``admin:create`` with the actor ``system/cli``.
"""

from __future__ import annotations

from datetime import timedelta

from governance.core.errors import InvalidInput
from governance.core.work import Work
from governance.identity.accounts import AccountInfo, account_info, create_account
from governance.identity.contact import clean_name, normalize_email
from governance.identity.credentials import issue_credential
from governance.identity.permissions import Role
from governance.identity.persons import person_key, person_ref
from governance.identity.principals import CLI_ACTOR
from ledger.entry import EntryType

__all__ = ["DEFAULT_ADMIN_TTL", "create_admin"]

DEFAULT_ADMIN_TTL = timedelta(days=90)


def create_admin(
    work: Work, *, email: str, name: str, ttl: timedelta = DEFAULT_ADMIN_TTL
) -> tuple[AccountInfo, str]:
    """Create a platform admin account and its first API key; return both (the key once).

    Raises InvalidInput for a malformed email or name, and ledger errors when the entries
    cannot be appended (the caller's transaction then rolls back).
    """
    errors: dict[str, list[str]] = {}
    try:
        clean_email = normalize_email(email)
    except ValueError as exc:
        errors["email"] = [str(exc)]
    try:
        clean = clean_name(name, max_length=300)
    except ValueError as exc:
        errors["name"] = [str(exc)]
    if errors:
        raise InvalidInput("The administrator's details are not valid.", fields=errors)
    row = create_account(
        work.session,
        role=Role.ADMIN,
        agency_id=None,
        name=clean,
        email=clean_email,
        phone=None,
        job_title=None,
        now=work.now,
    )
    work.record(
        EntryType.ADMIN_CREATE,
        actor=CLI_ACTOR,
        payload={
            "account": str(row.id),
            "role": Role.ADMIN.value,
            "person": person_ref(work.keys, person_key(clean_email)),
        },
    )
    issued = issue_credential(
        work,
        account_id=row.id,
        ttl=ttl,
        actor=CLI_ACTOR,
        label="created by facewarden admin create",
    )
    return account_info(row), issued.api_key
