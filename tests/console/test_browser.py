"""The console in a real browser, as people use it: register an agency, claim the account
with a passkey, sign out and in again, add and revoke a passkey; axe-core on every page.

Chromium (Debian), Playwright (PyPI) and axe-core (npm) are installed by ``.ci/run``; where
one is missing, these tests skip and say which.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.settings import Settings
from tests.api.helpers import decide, mail_to, make_admin, person, secret_in
from tests.console.browser import (
    MISSING,
    add_passkey_authenticator,
    assert_accessible,
    launch,
    new_context,
    served_console,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING), reason=f"the browser tests need {', '.join(MISSING)}"),
]


@pytest.fixture(scope="module")
def console_url(app: Flask, settings: Settings) -> Iterator[str]:
    with served_console(settings) as url:
        yield url


@pytest.fixture
def page(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    with launch(settings, tmp_path / "profile") as browser:
        context = new_context(browser, color_scheme="light")
        yield context.new_page()
        context.close()


def _fill_registration(page: Any, email: str) -> None:
    contact = person(email=email)
    page.get_by_label("Agency name").fill("Police judiciaire de Lyon")
    page.get_by_label("Kind of agency").select_option("police")
    page.get_by_label("Country (two-letter code, e.g. FR)").fill("FR")
    page.get_by_label("Jurisdiction").fill("Rhône")
    page.get_by_label("First name").fill(contact["first_name"])
    page.get_by_label("Last name").fill(contact["last_name"])
    page.get_by_label("Phone (international, e.g. +33 4 72 00 00 00)").fill(contact["phone"])
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Job function").fill(contact["job_title"])
    page.get_by_label("What will your agency use FaceWarden for?").fill(
        "Identify suspects of serious crimes from CCTV stills, under judicial warrant."
    )


def test_register_claim_sign_in_and_manage_passkeys(
    app: Flask, client: FlaskClient, console_url: str, page: Any
) -> None:
    # Anyone: the registration form, with its per-field errors, then "check your e-mail".
    page.goto(f"{console_url}/console/")
    assert_accessible(page)
    with pytest.raises(Exception, match="Content Security Policy"):
        page.add_script_tag(content="document.title = 'injected'")  # no inline script runs
    page.get_by_role("link", name="Register your agency").first.click()
    assert_accessible(page)
    page.get_by_role("button", name="Send the registration").click()
    assert page.get_by_text("Please correct the fields marked below").is_visible()
    assert page.locator("#email[aria-invalid=true]").count() == 1
    assert_accessible(page)  # the errors are tied to their fields
    email = f"commissaire.{id(page)}@interieur.gouv.fr"
    _fill_registration(page, email)
    page.get_by_role("button", name="Send the registration").click()
    page.get_by_role("heading", name="Check your e-mail").wait_for()
    assert_accessible(page)

    # The administrator approves it (through the API); the mail carries the console link.
    admin = make_admin(app)
    pending = client.get("/v1/registrations?status=pending", headers=admin.headers).get_json()
    registration = next(r for r in pending["items"] if r["contact"]["email"] == email)
    decide(client, admin, f"/v1/registrations/{registration['id']}", "approve")
    secret = secret_in(mail_to(app, email)[-1])

    # The person claims the account with a passkey on this device.
    cdp, authenticator = add_passkey_authenticator(page)
    page.goto(f"{console_url}/console/claim/registrations/{registration['id']}")
    assert_accessible(page)
    page.get_by_label("Claim secret (starts with fwc_)").fill(secret)
    page.get_by_role("button", name="Create my passkey and sign in").click()
    page.get_by_text("Your account is ready").wait_for()
    assert page.get_by_text("You are signed in as a supervisor").is_visible()
    assert_accessible(page)
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(held) == 1 and held[0]["isResidentCredential"] is True

    # The session cookie is out of the page's reach.
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-fw_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert "fw_session" not in page.evaluate("document.cookie")

    # Sign out, then in again with the passkey alone.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    assert_accessible(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.get_by_role("heading", name="Welcome").wait_for()

    # A second device's passkey, then the first device's revoked; the second signs in.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Passkeys").click()
    assert_accessible(page)
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    cdp, authenticator = add_passkey_authenticator(page)
    page.get_by_label("A name for the new passkey").fill("second device")
    page.get_by_role("button", name="Create a passkey").click()
    page.get_by_text("The new passkey is enrolled.").wait_for()
    assert page.get_by_role("cell", name="second device", exact=True).is_visible()
    # This session was opened with the laptop's passkey: revoking it ends the session too.
    page.get_by_role("button", name="Revoke my work laptop").click()
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.get_by_role("heading", name="Your passkeys").wait_for()  # back where it was
    assert page.get_by_role("cell", name="revoked").is_visible()
    assert_accessible(page)


def test_a_cancelled_passkey_prompt_says_what_to_do(console_url: str, page: Any) -> None:
    """Without an authenticator that answers, the page says so and stays usable."""
    cdp, authenticator = add_passkey_authenticator(page)
    cdp.send(
        "WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": False}
    )
    page.goto(f"{console_url}/console/sign-in")
    page.get_by_role("button", name="Sign in with a passkey").click()
    status = page.locator(".passkey-status")
    status.filter(has_text="Try again").wait_for(timeout=15_000)
    assert_accessible(page)


def test_pages_work_in_dark_mode_and_on_a_phone(
    settings: Settings, console_url: str, tmp_path: Path
) -> None:
    with launch(settings, tmp_path / "profile") as browser:
        context = new_context(
            browser, color_scheme="dark", viewport={"width": 390, "height": 844}, is_mobile=True
        )
        page = context.new_page()
        for path in ("/console/", "/console/sign-in", "/console/register"):
            page.goto(f"{console_url}{path}")
            assert_accessible(page)  # contrast included, in the dark palette
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, f"{path} scrolls sideways ({wide} px)"
        context.close()


def _enrol_with_key(page: Any, console_url: str, token: str) -> None:
    page.goto(f"{console_url}/console/enrol")
    page.get_by_label("Your API key (starts with fw_)").fill(token)
    page.get_by_role("button", name="Create my passkey and sign in").click()
    page.get_by_text("Your passkey is enrolled.").wait_for()


@pytest.mark.parametrize("role", ["admin", "supervisor", "investigator", "curator", "oversight"])
def test_every_page_of_each_role_is_accessible(
    app: Flask, client: FlaskClient, console_url: str, page: Any, role: str
) -> None:
    """Each role signs in (a passkey enrolled with its API key) and opens every page its
    navigation offers; axe-core checks each one."""
    from tests.api.helpers import make_account, make_agency, make_staff

    admin = make_admin(app)
    if role == "admin":
        agent = admin
    elif role in ("curator", "oversight"):
        agent = make_staff(client, admin, role)
    else:
        supervisor = make_agency(client, admin)
        agent = (
            supervisor if role == "supervisor" else make_account(client, admin, supervisor, role)
        )
    add_passkey_authenticator(page)
    _enrol_with_key(page, console_url, agent.token)
    assert_accessible(page)
    nav = page.get_by_role("navigation", name="Main")
    targets = [a.get_attribute("href") for a in nav.get_by_role("link").all()]
    assert targets, "the navigation offers no page"
    for href in targets:
        answer = page.goto(f"{console_url}{href}")
        assert answer is not None and answer.status == 200, (href, answer and answer.status)
        assert_accessible(page)
