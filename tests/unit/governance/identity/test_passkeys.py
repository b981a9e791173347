"""Passkey ceremonies: each challenge is answered once, in time, and spent ones do not pile up."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select

from governance.core.work import Work
from governance.identity.models import WebAuthnCeremony
from governance.identity.passkeys import (
    CEREMONY_TTL,
    PasskeyPolicy,
    PasskeyRejected,
    begin_sign_in,
    verify_sign_in,
)

POLICY = PasskeyPolicy(rp_id="localhost", rp_name="FaceWarden", origin="https://localhost:8443")


def _held(work: Work, ids: list[UUID]) -> int:
    query = select(func.count()).select_from(WebAuthnCeremony).where(WebAuthnCeremony.id.in_(ids))
    return int(work.session.scalar(query) or 0)


def test_ceremonies_past_their_time_are_swept_by_the_next(work: Work) -> None:
    old = [begin_sign_in(work, POLICY).id for _ in range(5)]
    assert _held(work, old) == 5
    later = dataclasses.replace(work, now=work.now + CEREMONY_TTL + timedelta(seconds=1))
    new = begin_sign_in(later, POLICY).id
    assert _held(later, old) == 0  # the five expired ones went
    assert _held(later, [new]) == 1  # the new one stays


def test_a_ceremony_answered_too_late_is_refused(work: Work) -> None:
    ceremony = begin_sign_in(work, POLICY)
    late = dataclasses.replace(work, now=work.now + CEREMONY_TTL)
    with pytest.raises(PasskeyRejected, match="longer than 5 minutes"):
        verify_sign_in(late, POLICY, ceremony_id=ceremony.id, response="{}")
