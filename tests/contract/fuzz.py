"""Run schemathesis against the app in-process (WSGI) with every check, as one role.

Shared by the bounded profile in the suite (tests/contract/test_schemathesis.py) and the deep
profile (bench/contract.py). Each run loads the document the app serves, fuzzes every
operation with the role's key (or none), follows the OpenAPI links in the stateful phase, and
returns how many cases ran and every failure found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext
from schemathesis.transport.serialization import Binary

from api.spec import generate_spec

# Phone numbers are checked against the numbering plans (libphonenumber), which no pattern
# states: the schema names the format, and valid data draws from real numbers.
schemathesis.openapi.format(
    "phone",
    st.sampled_from(["+33142685300", "+493012345678", "+442079460958", "+14155552671"]),
)

# Email addresses are checked for syntax and for special-use domains (RFC 6761: .test,
# .invalid, .localhost, ...), to which a claim secret could never be mailed; valid data uses
# ordinary domains.
schemathesis.openapi.format(
    "email",
    st.from_regex(r"\A[a-z][a-z0-9.]{0,20}[a-z0-9]@[a-z]{2,12}\.(?:fr|de|org|com|eu)\Z"),
)

# A site is reduced to its registrable domain with the Public Suffix List, which no pattern
# states; valid data uses real sites.
schemathesis.openapi.format(
    "site",
    st.sampled_from(["example.com", "news.bbc.co.uk", "https://www.flickr.com/photos/a/1"]),
)

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
)


@dataclass(frozen=True, slots=True)
class Profile:
    """How hard to fuzz: examples per operation and phase, and stateful steps."""

    name: str
    max_examples: int
    stateful_examples: int
    seed: int = 20261201
    coverage: bool = True


BOUNDED = Profile("bounded", max_examples=3, stateful_examples=5)
DEEP = Profile("deep", max_examples=60, stateful_examples=150)
# CI's second database: every check and role, without the coverage phase (nine tenths of the
# bounded profile's cases, and database-independent: it varies schemas, not the data stored).
LIGHT = Profile("light", max_examples=3, stateful_examples=5, coverage=False)


@dataclass(slots=True)
class Outcome:
    role: str
    cases: int = 0
    cases_by_phase: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _RuntimeRules:
    """Make valid data valid for the rules a static document cannot state as schema.

    Each is stated in the document's descriptions, and the service answers 422 naming the
    field when it is broken; but JSON Schema has no "now", no deployment settings and no
    image decoder. So schemathesis' valid cases get (besides real face photos as binary
    strings, drawn by the ``binary`` format in ``run``): a collection date in the past;
    authorisation dates around the clock's now (issued in the past, expiring in the
    future); an offence the deployment allows; a search quota within the deployment's cap;
    a threshold at or above the model pack's calibrated floor. And the relations between
    fields JSON Schema cannot tie (``end`` not before ``start``, ``seq`` below ``size``,
    ``from`` not after ``to``; an erasure ``kind`` with its own field). Invalid cases are
    left as generated, so negative_data_rejection still sees them.
    """

    def __init__(self, app: Flask) -> None:
        from api.context import EXTENSION

        runtime = app.extensions[EXTENSION]
        self.cap = runtime.settings.max_searches_per_basis
        self.floor = runtime.model_pack.match_threshold

    def satisfy(self, body: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        authorisation = body.get("authorisation")
        if isinstance(authorisation, dict):
            authorisation["issued_at"] = (now - timedelta(days=1)).isoformat()
            authorisation["expires_at"] = (now + timedelta(days=30)).isoformat()
            # Who issued it and its number: required for a judicial one, absent for an
            # urgent one (ratification attaches them).
            for member, value in (("reference", "TJ-2026-1"), ("authority", "TJ Lyon")):
                if authorisation.get("kind") == "urgent":
                    authorisation.pop(member, None)
                else:
                    authorisation[member] = authorisation.get(member) or value
        if "collected_at" in body:  # not in the future, not before the web
            body["collected_at"] = (now - timedelta(days=3)).isoformat()
        if "offence_category" in body:
            body["offence_category"] = "kidnapping_hostage_taking"
        if isinstance(body.get("max_searches"), int):
            body["max_searches"] = min(body["max_searches"], self.cap)
        if isinstance(body.get("threshold"), int | float):
            body["threshold"] = max(float(body["threshold"]), self.floor)
        if body.get("kind") == "photo":
            body.setdefault("photo_id", "e3e70682-c209-1cac-a29f-6fbed82c07cd")
        if body.get("kind") == "source_url" and not body.get("source_url"):
            body["source_url"] = "https://www.example.com/a.jpg"

    def order(self, query: dict[str, Any]) -> None:
        for low, high in (("start", "end"), ("from", "to")):
            a, b = _integer(query.get(low)), _integer(query.get(high))
            if a is not None and b is not None and a > b:
                query[low], query[high] = b, a
        seq, size = _integer(query.get("seq")), _integer(query.get("size"))
        if seq is not None and size is not None and seq >= size:
            query["seq"], query["size"] = size - 1 if size > 0 else 0, max(seq, 1)


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_ACTIVE: list[_RuntimeRules] = []


@schemathesis.hook  # type: ignore[misc]
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """Every phase's cases pass here just before they are sent (a global hook: one run at once)."""
    meta = case.meta
    negative = meta is not None and (
        meta.generation.mode.is_negative
        or any(c.mode.is_negative for c in meta.components.values())
    )
    if not _ACTIVE or negative:
        return
    rules = _ACTIVE[0]
    # Copies: other cases (the negative variants of this one) may share these containers.
    if isinstance(case.body, dict):
        case.body = dict(case.body)
        for key, value in case.body.items():
            if isinstance(value, dict):
                case.body[key] = dict(value)
        rules.satisfy(case.body)
    if isinstance(case.query, dict):
        case.query = dict(case.query)
        rules.order(case.query)


def _config(profile: Profile, token: str | None) -> SchemathesisConfig:
    checks: dict[str, Any] = {"enabled": False}
    for name in CHECKS:
        checks[name] = {"enabled": True}
    data: dict[str, Any] = {
        "seed": profile.seed,
        "max-failures": 1000,
        "checks": checks,
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": profile.coverage},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": profile.stateful_examples},
        },
        "generation": {
            "max-examples": profile.max_examples,
            "mode": "all",
            # Text rules the schema states as patterns are ASCII classes; JSON Schema's
            # `pattern` cannot name Unicode categories portably (see api/schemas/fields.py).
            "codec": "ascii",
            "database": "none",
        },
        "warnings": False,
    }
    if token is not None:
        data["headers"] = {"Authorization": f"Bearer {token}"}
    return SchemathesisConfig.from_dict(data)


def _valid_multipart(spec: dict[str, Any], case: Case) -> bool:
    """Whether a multipart case's body, as sent, satisfies the document's schema."""
    operation = spec["paths"][case.operation.path][case.method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" not in content or not isinstance(case.body, dict):
        return False
    ref = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = spec["components"]["schemas"][ref]
    body = {k: "" if isinstance(v, bytes | Binary) else v for k, v in case.body.items()}
    return not list(Draft202012Validator(schema).iter_errors(body))


def _shown(case: Case) -> str:
    body = case.body
    if isinstance(body, dict):
        body = {
            k: f"<{len(v)} long: {v[:40]!r}...{v[-20:]!r}>" if len(repr(v)) > 200 else v
            for k, v in body.items()
        }
    return f"{case.method} {case.formatted_path} query={case.query} body={body!r}"[:2000]


def run(
    app: Flask, role: str, token: str | None, profile: Profile, faces: Sequence[Path]
) -> Outcome:
    """Fuzz ``app`` as ``role`` (its ``token``, or none) and report cases and failures."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=_config(profile, token))
    photos = [p.read_bytes() for p in faces]

    _ACTIVE[:] = [_RuntimeRules(app)]
    if photos:
        # Binary strings are drawn from real face photos, so that valid uploads are valid.
        schemathesis.openapi.format("binary", st.sampled_from([Binary(p) for p in photos]))

    spec = generate_spec()
    outcome = Outcome(role)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            phase = str(event.phase.value if hasattr(event.phase, "value") else event.phase)
            outcome.cases += len(recorder.cases)
            outcome.cases_by_phase[phase] = outcome.cases_by_phase.get(phase, 0) + len(
                recorder.cases
            )
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        node = recorder.cases.get(case_id)
                        if (
                            check.name == "negative_data_rejection"
                            and node is not None
                            and _valid_multipart(spec, node.value)
                        ):
                            # Written reason: schemathesis 4.32 labels some multipart cases
                            # negative that its own document validates (a mutation of the
                            # binary part that serializes back to a file part). A body that
                            # the document's schema accepts was rightly accepted.
                            continue
                        label = node.value.operation.label if node else "?"
                        failure = check.failure_info.failure
                        interaction = recorder.interactions.get(case_id)
                        response = interaction.response if interaction else None
                        answer = (
                            f"{response.status_code} {response.content[:400]!r}" if response else ""
                        )
                        outcome.failures.append(
                            f"{role} {label} {check.name}: {failure.title}\n"
                            f"  {failure.message}\n  answer: {answer}\n"
                            f"  sent: {_shown(node.value) if node else ''}"
                        )
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(f"{role} {event.label}: {event.info.format()[:500]}")
        elif isinstance(event, events.FatalError):
            outcome.errors.append(f"{role} fatal: {event.exception!r}")
    return outcome
