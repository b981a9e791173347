"""Mail to people: queued in the transaction of the act it announces, delivered after commit.

A message is a row of ``mail_outbox`` written in the same transaction as the act, so a rolled
back act never sends mail; ``deliver`` then sends it through a ``Transport`` and erases the
body (which may hold a claim secret). A failed delivery is logged and kept, with its attempts
and last error, for ``facewarden mail deliver`` to retry; the act stays done. Two transports,
standard library only: SMTP with STARTTLS or implicit TLS, and RFC 5322 ``.eml`` files in an
owner-only outbox directory for a one-machine install (the design of Django's file backend).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit
from uuid import UUID, uuid4

from sqlalchemy import Integer, String, Text, Uuid, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from governance.core.db import unit_of_work
from governance.core.orm import Base, UtcDateTime

__all__ = [
    "DeliveryReport",
    "FileTransport",
    "MailMessage",
    "Mailer",
    "SmtpTarget",
    "SmtpTransport",
    "Transport",
    "deliver",
    "parse_smtp_url",
    "queue",
    "queued",
]


class MailMessage(Base):
    """A message queued in the transaction of the act it announces, delivered after commit.

    The body (it may hold a claim secret) is erased once the message is delivered; a failed
    delivery keeps it, with the attempts and the last error, for the next delivery run.
    """

    __tablename__ = "mail_outbox"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


log = logging.getLogger("facewarden.mail")

_QUEUED = "facewarden.mail.queued"  # session.info key: ids queued in this unit of work
_SCHEMES = {"smtp": 587, "smtps": 465}


class Transport(Protocol):
    """Something that hands one message on, or raises OSError / smtplib.SMTPException."""

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to submit mail: ``smtp://`` upgrades with STARTTLS, ``smtps://`` is TLS."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://[user@]host[:587]`` (STARTTLS, required) or ``smtps://[user@]host[:465]``.

    Raises ValueError for another scheme, a missing host or a password in the URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError("must start with smtp:// (STARTTLS) or smtps:// (implicit TLS)")
    if not parts.hostname:
        raise ValueError("names no host")
    if parts.password is not None:
        raise ValueError("must not hold a password: put it in a file named by *_PASSWORD_FILE")
    try:
        port = parts.port or _SCHEMES[parts.scheme]
    except ValueError as exc:
        raise ValueError("has a malformed port") from exc
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        implicit_tls=parts.scheme == "smtps",
        username=unquote(parts.username) if parts.username else None,
    )


@dataclass(frozen=True, slots=True)
class SmtpTransport:
    """Submit over SMTP, always encrypted: STARTTLS is required, never optional."""

    target: SmtpTarget
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    timeout: float = 30.0

    def send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        client: smtplib.SMTP
        if self.target.implicit_tls:
            client = smtplib.SMTP_SSL(
                self.target.host, self.target.port, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(self.target.host, self.target.port, timeout=self.timeout)
        with client:
            if not self.target.implicit_tls:
                client.starttls(context=context)  # raises SMTPNotSupportedError without it
            if self.target.username:
                client.login(self.target.username, self.password or "")
            client.send_message(message)


@dataclass(frozen=True, slots=True)
class FileTransport:
    """Write each message as ``<date>-<id>.eml`` in ``directory`` (mode 0700, files 0600)."""

    directory: Path

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        name = f"{datetime.now().strftime('%Y%m%dT%H%M%S%f')}-{os.urandom(6).hex()}.eml"
        partial = self.directory / f".{name}.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(message.as_bytes(policy=policy.SMTP))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, self.directory / name)


@dataclass(frozen=True, slots=True)
class Mailer:
    """A transport and the sender address every message carries."""

    transport: Transport
    sender: str


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """How a delivery run went."""

    sent: int
    failed: int


def queue(session: Session, *, recipient: str, subject: str, body: str, now: datetime) -> UUID:
    """Queue a plain-text message in the caller's transaction; it is delivered after commit."""
    row = MailMessage(recipient=recipient, subject=subject, body=body, created_at=now, attempts=0)
    session.add(row)
    session.flush()
    session.info.setdefault(_QUEUED, []).append(row.id)
    return row.id


def queued(session: Session) -> list[UUID]:
    """The messages queued in this session's unit of work."""
    ids: list[UUID] = session.info.get(_QUEUED, [])
    return list(ids)


def _message(row: MailMessage, sender: str, now: datetime) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    # 8bit (RFC 6152): names need not be ASCII, and a claim address must not be split by
    # quoted-printable soft breaks when a person copies it.
    message.set_content(row.body or "", cte="8bit")
    return message


# How long a delivery that started may run before another run takes the message over (a
# worker killed mid-send); longer than the SMTP timeout, so a live send is never doubled.
DELIVERY_LEASE = timedelta(seconds=120)


def deliver(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    *,
    clock: Callable[[], datetime],
    ids: Iterable[UUID] | None = None,
    stale_after: timedelta | None = None,
) -> DeliveryReport:
    """Send the undelivered messages (``ids`` only, or all), each claimed, sent, then settled.

    A message older than ``stale_after`` (the claim TTL: the secret it carries has expired) is
    not sent; its body is erased and the row says why.

    A message is claimed in one short unit of work and settled in another; the SMTP exchange
    runs with no transaction open, so a slow relay never holds the database's write lock. A
    delivered message keeps its envelope and loses its body; a failure is logged and counted on
    the row for the next run. Never raises for a transport failure.
    """
    with unit_of_work(sessions) as session:
        query = select(MailMessage.id).where(MailMessage.sent_at.is_(None))
        if ids is not None:
            query = query.where(MailMessage.id.in_(list(ids)))
        todo = list(session.scalars(query.order_by(MailMessage.created_at)))
    sent = failed = 0
    for message_id in todo:
        claimed = _claim(sessions, message_id, mailer.sender, clock(), stale_after)
        if claimed is None:
            continue  # delivered, or being delivered, by another run
        message, attempt = claimed
        error: str | None = None
        try:
            mailer.transport.send(message)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        with unit_of_work(sessions) as session:
            row = session.get(MailMessage, message_id, with_for_update=True)
            if row is None:
                continue
            if error is None:
                sent += 1
                row.sent_at = attempt
                row.body = None
                row.last_error = None
            else:
                failed += 1
                row.last_error = error
                log.warning(
                    "mail delivery failed; `facewarden mail deliver` retries it",
                    extra={"mail_id": str(row.id), "error": error},
                )
    return DeliveryReport(sent=sent, failed=failed)


def _claim(
    sessions: sessionmaker[Session],
    message_id: UUID,
    sender: str,
    now: datetime,
    stale_after: timedelta | None,
) -> tuple[EmailMessage, datetime] | None:
    """Take one undelivered message for this run, unless another run is sending it."""
    with unit_of_work(sessions) as session:
        row = session.get(MailMessage, message_id, with_for_update=True)
        if row is None or row.sent_at is not None or row.body is None:
            return None
        if stale_after is not None and row.created_at <= now - stale_after:
            row.body = None  # the secret it held has expired: keep it no longer
            row.last_error = "expired before delivery: resend the claim"
            return None
        in_flight = (
            row.last_error is None
            and row.last_attempt_at is not None
            and row.last_attempt_at > now - DELIVERY_LEASE
        )
        if in_flight:
            return None
        row.attempts += 1
        row.last_attempt_at = now
        row.last_error = None  # in flight until settled
        return _message(row, sender, now), now
