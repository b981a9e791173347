"""Models of searches, their candidates and the human reviews of those candidates.

A candidate refers to a gallery face by id only (no copy of its URL or thumbnail), so an erased
or purged face leaves nothing behind in search records. Probe images are never stored: a
search keeps the probe's SHA-256, the face box and its quality.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.core.orm import Base, UtcDateTime, check_one_of
from governance.gallery.models import FaceGeometry, RecognizedBy

__all__ = ["VERDICTS", "RefusalCount", "Review", "Search", "SearchCandidate", "Verdict"]


class Verdict(StrEnum):
    """A reviewer's verdict on a candidate; two ``possible_match`` make a confirmed lead."""

    POSSIBLE_MATCH = "possible_match"
    NO_MATCH = "no_match"
    INCONCLUSIVE = "inconclusive"


VERDICTS = tuple(v.value for v in Verdict)


class Search(FaceGeometry, RecognizedBy, Base):
    """One search run under a legal basis, with what was searched and how."""

    __tablename__ = "searches"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    agency_id: Mapped[UUID] = mapped_column(ForeignKey("agencies.id"), index=True)
    account_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    legal_basis_id: Mapped[UUID] = mapped_column(index=True)
    purpose: Mapped[str] = mapped_column(Text)
    probe_sha256: Mapped[str] = mapped_column(String(64))
    top_k: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    gallery_collection: Mapped[str] = mapped_column(String(64))
    gallery_size: Mapped[int] = mapped_column(Integer)
    ledger_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    results_deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    results_deleted_reason: Mapped[str | None] = mapped_column(String(32))

    candidates: Mapped[list[SearchCandidate]] = relationship(
        back_populates="search",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SearchCandidate.rank",
    )
    reviews: Mapped[list[Review]] = relationship(
        back_populates="search", cascade="all, delete-orphan", passive_deletes=True
    )


class SearchCandidate(Base):
    """A gallery face a search returned, in rank order, and how often it was looked at."""

    __tablename__ = "search_candidates"
    __table_args__ = (UniqueConstraint("search_id", "face_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[UUID] = mapped_column(
        ForeignKey("searches.id", ondelete="CASCADE"), index=True
    )
    rank: Mapped[int] = mapped_column(Integer)
    face_id: Mapped[UUID] = mapped_column(index=True)
    score: Mapped[float] = mapped_column(Float)
    source_site: Mapped[str] = mapped_column(String(253))
    views: Mapped[int] = mapped_column(Integer, default=0)

    search: Mapped[Search] = relationship(back_populates="candidates")


class Review(Base):
    """One reviewer's verdict on one candidate (two-person review, EU AI Act Art. 14(5))."""

    __tablename__ = "search_reviews"
    __table_args__ = (
        UniqueConstraint("search_id", "face_id", "reviewer_id"),
        check_one_of("verdict", Verdict),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    search_id: Mapped[UUID] = mapped_column(
        ForeignKey("searches.id", ondelete="CASCADE"), index=True
    )
    face_id: Mapped[UUID] = mapped_column()
    reviewer_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    verdict: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    search: Mapped[Search] = relationship(back_populates="reviews")


class RefusalCount(Base):
    """Searches refused to one credential in one window for one reason.

    The first is recorded in full (``first_seq``, the ``search:refuse`` entry; None when the
    window's cap on full entries was reached), the others are only counted in ``repeats``,
    which a ``search:refuse_repeats`` entry (``summary_seq``) puts on record once the window
    has closed. The count commits with each refusal, so a crash loses none.
    """

    __tablename__ = "refusal_counts"
    __table_args__ = (CheckConstraint("repeats >= 0", name="repeats"),)

    credential_id: Mapped[UUID] = mapped_column(ForeignKey("credentials.id"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True, index=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[UUID] = mapped_column(ForeignKey("accounts.id"))
    agency_id: Mapped[UUID | None] = mapped_column(ForeignKey("agencies.id"))
    first_seq: Mapped[int | None] = mapped_column(Integer)
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    summary_seq: Mapped[int | None] = mapped_column(Integer)


class SearchProbe(Base):
    """The probe face of a search, as a small JPEG of the chosen face (never the whole
    photo), for the agency's reviewers to compare with each candidate. It is kept exactly as
    long as the search's results: deleted with them (lapse, revocation, retention) in the
    same transaction, so no crash can leave it behind."""

    __tablename__ = "search_probes"

    search_id: Mapped[UUID] = mapped_column(
        ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True
    )
    image: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
