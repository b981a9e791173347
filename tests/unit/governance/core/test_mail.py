"""Mail goes out after commit, over SMTP with STARTTLS or implicit TLS and AUTH, or as .eml
files in an owner-only outbox; a failed delivery is kept and retried, never lost.
"""

from __future__ import annotations

import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from uuid import UUID

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from api.context import work
from governance.core import mail
from governance.core.db import unit_of_work
from governance.core.mail import FileTransport, Mailer, MailMessage, SmtpTransport, parse_smtp_url
from tests.api.helpers import runtime_of
from tests.smtp import PASSWORD, USER, smtp_server

SENDER = "FaceWarden <noreply@facewarden.example>"


def _clock() -> datetime:
    return datetime.now(UTC)


def _queue(sessions: sessionmaker[Session], to: str = "camille@police.example") -> UUID:
    with unit_of_work(sessions) as session:
        return mail.queue(
            session,
            recipient=to,
            subject="Your FaceWarden account",
            body="Claim secret: fwc_test\n",
            now=_clock(),
        )


def _row(sessions: sessionmaker[Session], message_id: UUID) -> MailMessage:
    with sessions() as session:
        row = session.get(MailMessage, message_id)
        assert row is not None
        return row


@pytest.mark.parametrize(("mode", "scheme"), [("starttls", "smtp"), ("tls", "smtps")])
def test_smtp_delivery_is_encrypted_and_authenticated(
    app: Flask, tmp_path: Path, mode: str, scheme: str
) -> None:
    sessions = runtime_of(app).sessions
    with smtp_server(tmp_path, mode=mode) as server:
        target = parse_smtp_url(f"{scheme}://{USER}@127.0.0.1:{server.port}")
        mailer = Mailer(SmtpTransport(target, password=PASSWORD, ca_file=server.ca_file), SENDER)
        message_id = _queue(sessions)
        report = mail.deliver(sessions, mailer, clock=_clock, ids=[message_id])
        assert report == mail.DeliveryReport(sent=1, failed=0)
        [(envelope_from, recipients)] = server.inbox.envelopes
        [received] = server.inbox.messages
    assert envelope_from == "noreply@facewarden.example"
    assert recipients == ["camille@police.example"]
    assert received["From"] == SENDER and received["To"] == "camille@police.example"
    assert received["Subject"] == "Your FaceWarden account"
    assert received["Message-ID"] and received["Date"]
    assert received.get_content().replace("\r\n", "\n") == "Claim secret: fwc_test\n"
    row = _row(sessions, message_id)
    assert row.sent_at is not None and row.body is None and row.attempts == 1  # secret erased


@pytest.mark.parametrize("case", ["no-starttls", "wrong-password", "untrusted-certificate"])
def test_a_failed_delivery_is_kept_visible_and_retried(
    app: Flask, tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = runtime_of(app).sessions
    mode = "plain" if case == "no-starttls" else "starttls"
    with smtp_server(tmp_path, mode=mode) as server:
        target = parse_smtp_url(f"smtp://{USER}@127.0.0.1:{server.port}")
        bad = SmtpTransport(
            target,
            password="wrong" if case == "wrong-password" else PASSWORD,
            ca_file=None if case == "untrusted-certificate" else server.ca_file,
        )
        message_id = _queue(sessions)
        report = mail.deliver(sessions, Mailer(bad, SENDER), clock=_clock, ids=[message_id])
        assert report == mail.DeliveryReport(sent=0, failed=1)
        assert server.inbox.messages == []  # nothing went out in clear or unauthenticated
    row = _row(sessions, message_id)
    assert row.sent_at is None and row.attempts == 1 and row.body == "Claim secret: fwc_test\n"
    assert row.last_error
    assert any(r.name == "facewarden.mail" and r.levelname == "WARNING" for r in caplog.records)
    with smtp_server(tmp_path) as server:
        target = parse_smtp_url(f"smtp://{USER}@127.0.0.1:{server.port}")
        good = SmtpTransport(target, password=PASSWORD, ca_file=server.ca_file)
        retried = mail.deliver(sessions, Mailer(good, SENDER), clock=_clock)
        assert retried.sent >= 1 and retried.failed == 0
        assert [m["To"] for m in server.inbox.messages].count("camille@police.example") >= 1
    assert _row(sessions, message_id).attempts == 2


def test_the_file_transport_writes_owner_only_rfc5322_files(app: Flask, tmp_path: Path) -> None:
    sessions = runtime_of(app).sessions
    outbox = tmp_path / "mail" / "outbox"
    message_id = _queue(sessions, "kim@example.org")
    report = mail.deliver(sessions, Mailer(FileTransport(outbox), SENDER), clock=_clock)
    assert report.sent >= 1
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    files = sorted(outbox.glob("*.eml"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    parsed = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    [kim] = [m for m in parsed if m["To"] == "kim@example.org"]
    assert kim["From"] == SENDER
    assert kim.get_content().replace("\r\n", "\n") == "Claim secret: fwc_test\n"
    assert b"\r\n" in files[0].read_bytes()  # RFC 5322 line endings
    assert _row(sessions, message_id).sent_at is not None


def test_mail_of_a_rolled_back_act_is_never_sent(app: Flask) -> None:
    rt = runtime_of(app)
    outbox = rt.settings.mail_outbox_dir
    before = set(outbox.glob("*.eml")) if outbox.is_dir() else set()
    with app.test_request_context(), pytest.raises(RuntimeError), work() as w:
        mail.queue(w.session, recipient="nobody@example.org", subject="s", body="b", now=_clock())
        raise RuntimeError("the act failed after its mail was queued")
    after = set(outbox.glob("*.eml")) if outbox.is_dir() else set()
    assert after == before
    with rt.sessions() as session:
        assert session.query(MailMessage).filter_by(recipient="nobody@example.org").count() == 0


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://mail.example.org", "must start with smtp://"),
        ("smtp://", "names no host"),
        ("smtp://user:secret@mail.example.org", "must not hold a password"),
        ("smtps://mail.example.org:x", "malformed port"),
    ],
)
def test_smtp_urls_are_checked(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_smtp_url(url)


def test_smtp_url_defaults() -> None:
    assert parse_smtp_url("smtp://relay.example.org") == mail.SmtpTarget(
        "relay.example.org", 587, False, None
    )
    assert parse_smtp_url("smtps://a%40b@relay.example.org") == mail.SmtpTarget(
        "relay.example.org", 465, True, "a@b"
    )


class _StalledRelay:
    """A transport that holds each send until released, like a relay that stops answering."""

    def __init__(self) -> None:
        self.sending = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, message: EmailMessage) -> None:
        self.sending.set()
        assert self.release.wait(10)
        self.sent.append(str(message["To"]))


def test_a_stalled_relay_holds_no_database_lock_and_no_message_is_sent_twice(app: Flask) -> None:
    sessions = runtime_of(app).sessions
    message_id = _queue(sessions, to="stalled@police.example")
    relay = _StalledRelay()
    mailer = Mailer(relay, SENDER)
    delivery = threading.Thread(
        target=mail.deliver, args=(sessions, mailer), kwargs={"clock": _clock, "ids": [message_id]}
    )
    delivery.start()
    try:
        assert relay.sending.wait(10)
        # While the relay stalls, another request writes, and a second run finds it in flight.
        started = time.monotonic()
        other = _queue(sessions, to="someone-else@police.example")
        report = mail.deliver(sessions, mailer, clock=_clock, ids=[message_id])
        assert time.monotonic() - started < 2
        assert report == mail.DeliveryReport(sent=0, failed=0)
    finally:
        relay.release.set()
        delivery.join(10)
    assert relay.sent == ["stalled@police.example"]
    row = _row(sessions, message_id)
    assert row.sent_at is not None and row.body is None and row.attempts == 1
    assert _row(sessions, other).sent_at is None


def test_a_message_whose_claim_expired_is_not_sent_and_its_secret_is_erased(app: Flask) -> None:
    sessions = runtime_of(app).sessions
    with unit_of_work(sessions) as session:
        old = mail.queue(
            session,
            recipient="late@police.example",
            subject="Your FaceWarden account",
            body="Claim secret: fwc_expired\n",
            now=_clock() - timedelta(days=8),
        )
    relay = _StalledRelay()
    relay.release.set()
    report = mail.deliver(
        sessions, Mailer(relay, SENDER), clock=_clock, ids=[old], stale_after=timedelta(days=7)
    )
    assert report == mail.DeliveryReport(sent=0, failed=0) and relay.sent == []
    row = _row(sessions, old)
    assert row.sent_at is None and row.body is None
    assert row.last_error == "expired before delivery: resend the claim"
