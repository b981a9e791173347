"""The identity domain's closed sets of values: standings, application and proposal states,
agency kinds and the acts that need two administrators.

They live apart from the services so the models can derive their CHECK constraints from them.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AgencyKind", "ApplicationStatus", "ProposalStatus", "ProposedAct", "Standing"]


class Standing(StrEnum):
    """Whether an agency or an account may act."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class ApplicationStatus(StrEnum):
    """Where a registration or an account request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLAIMED = "claimed"


class ProposalStatus(StrEnum):
    """Where a proposal of an act that needs two administrators stands."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class AgencyKind(StrEnum):
    POLICE = "police"
    PROSECUTION = "prosecution"
    BORDER = "border"
    OTHER = "other"


class ProposedAct(StrEnum):
    """The acts that need two administrators (besides creating an oversight account)."""

    ACCOUNT_SUSPEND = "account:suspend"
    CREDENTIAL_REVOKE = "credential:revoke"
    AGENCY_SUSPEND = "agency:suspend"
