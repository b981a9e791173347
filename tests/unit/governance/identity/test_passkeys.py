"""Passkey ceremonies: each challenge is answered once, in time, and spent ones do not pile up."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

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


def _count(work: Work) -> int:
    return int(work.session.scalar(select(func.count()).select_from(WebAuthnCeremony)) or 0)


def test_ceremonies_past_their_time_are_swept_by_the_next(work: Work) -> None:
    before = _count(work)
    for _ in range(5):
        begin_sign_in(work, POLICY)
    assert _count(work) == before + 5
    later = dataclasses.replace(work, now=work.now + CEREMONY_TTL + timedelta(seconds=1))
    begin_sign_in(later, POLICY)
    assert _count(later) == 1  # the five expired ones went, the new one stays


def test_a_ceremony_answered_too_late_is_refused(work: Work) -> None:
    ceremony = begin_sign_in(work, POLICY)
    late = dataclasses.replace(work, now=work.now + CEREMONY_TTL)
    with pytest.raises(PasskeyRejected, match="longer than 5 minutes"):
        verify_sign_in(late, POLICY, ceremony_id=ceremony.id, response="{}")
