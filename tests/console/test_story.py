"""The whole story in a real browser, on a deployment of its own: an agency registers, its
people claim their accounts from the e-mails a real SMTP server receives, a legal basis is
recorded and approved by two supervisors, a curator enrols real faces, an investigator
searches a photo of two people and chooses one face, two colleagues review the candidates
until a lead is confirmed, the police file prints, and oversight reads the report. The
ledger then holds every act, and ``facewarden-verify audit`` passes on its export.

The search and the reviews are driven by the keyboard alone. Each role's main page is
photographed (``FACEWARDEN_TEST_SCREENSHOTS``: where to write them; docs/console.md shows
them) and checked with axe-core.
"""

from __future__ import annotations

import io
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine, select

from api.settings import Settings
from ledger.storage import entries
from tests.api.faces import dev_photos
from tests.api.helpers import person, secret_in
from tests.api.served import environment
from tests.console.browser import (
    MISSING,
    add_passkey_authenticator,
    assert_accessible,
    launch,
    new_context,
    own_deployment,
    served_console,
)
from tests.smtp import PASSWORD, USER, Inbox, smtp_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.models,
    pytest.mark.skipif(bool(MISSING), reason=f"the browser tests need {', '.join(MISSING)}"),
]

VERIFY = str(Path(sys.executable).with_name("facewarden-verify"))
_LINK = re.compile(r"Console link: (\S+)")
_CASE = "PJ-LYON-2026-0417"
_FACE_LABEL = re.compile(r"Face (\d+) \(at (-?\d+), (-?\d+);")


@dataclass
class Deployment:
    url: str
    settings: Settings
    env: dict[str, str]
    inbox: Inbox

    def cli(self, *args: str) -> str:
        """``facewarden ARGS`` on this deployment; its standard output."""
        ran = subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        return ran.stdout

    def mail_to(self, address: str) -> EmailMessage:
        """The last message the SMTP server received for ``address`` (waiting for it)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = [m for m in self.inbox.messages if m["To"] == address]
            if found:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no mail reached {address}")

    def api(self, method: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """An integration's call to the API, over the deployment's TLS."""
        context = ssl.create_default_context(cafile=str(self.settings.tls_cert_path))
        call = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(call, context=context, timeout=30) as answer:
            return dict(json.loads(answer.read()))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A fresh database, data directory and ledger, served over TLS with a real SMTP server."""
    root = tmp_path_factory.mktemp("story")
    with (
        own_deployment(root, "story.facewarden.local/ledger") as settings,
        smtp_server(root) as smtp,
    ):
        mail = {
            "FACEWARDEN_SMTP_URL": f"smtp://{USER}@127.0.0.1:{smtp.port}",
            "FACEWARDEN_SMTP_PASSWORD": PASSWORD,
            "FACEWARDEN_SMTP_CA_FILE": str(smtp.ca_file),
        }
        with served_console(settings, mail) as url:
            env = environment(settings, {**mail, "FACEWARDEN_PUBLIC_URL": url})
            yield Deployment(url, settings, env, smtp.inbox)


@dataclass
class Person:
    """Someone with a browser page of their own and a passkey on its authenticator."""

    page: Any
    email: str


class Cast:
    """The people of the story, each in a browser context of their own."""

    def __init__(self, browser: Any, deployment: Deployment, shots: Path) -> None:
        self.browser = browser
        self.deployment = deployment
        self.shots = shots

    def page(self) -> Any:
        page = new_context(self.browser, color_scheme="light").new_page()
        add_passkey_authenticator(page)
        return page

    def claim(self, email: str, done: str = "Your account is ready") -> Person:
        """Open the console link of ``email``'s claim mail, and claim with a new passkey."""
        message = self.deployment.mail_to(email)
        body = message.get_body(("plain",))
        assert body is not None
        link = _LINK.search(body.get_content())
        assert link is not None, body.get_content()
        page = self.page()
        page.goto(link.group(1))
        assert_accessible(page)
        page.get_by_label("Claim secret (starts with fwc_)").fill(secret_in(message))
        page.get_by_role("button", name="Create my passkey and sign in").click()
        page.get_by_text(done).wait_for()
        return Person(page, email)

    def with_key(self, token: str) -> Person:
        """An administrator made with ``facewarden admin create`` enrols with its key."""
        page = self.page()
        page.goto(f"{self.deployment.url}/console/enrol")
        page.get_by_label("Your API key (starts with fw_)").fill(token)
        page.get_by_role("button", name="Create my passkey and sign in").click()
        page.get_by_text("Your passkey is enrolled.").wait_for()
        return Person(page, "")

    def shoot(self, page: Any, name: str) -> None:
        """Check the page with axe-core, then photograph it for docs/console.md."""
        assert_accessible(page)
        path = self.shots / f"console-{name}.png"
        # The faces are masked: the photos belong to the labelled test set, not to the docs.
        faces = page.locator("img, svg image")
        page.screenshot(path=str(path), full_page=False, mask=[faces], mask_color="#8a8f98")
        assert path.stat().st_size > 10_000


def go(who: Person, label: str) -> None:
    """Follow the main navigation's link named ``label``."""
    who.page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=label, exact=True
    ).click()
    who.page.wait_for_load_state("load")


def decide(page: Any, heading: str, reason: str, button: str) -> None:
    """Give a reason and a verdict in the queue item titled ``heading``."""
    item = page.get_by_role("article").filter(
        has=page.get_by_role("heading", name=heading, exact=True)
    )
    item.get_by_label("Reason for your decision").fill(reason)
    with page.expect_navigation():
        item.get_by_role("button", name=button).click()
    page.get_by_role("status").wait_for()


def tab_to(page: Any, target: Any, limit: int = 80) -> None:
    """Press Tab until ``target`` holds the focus, as a keyboard user would."""
    handle = target.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
    raise AssertionError(f"{target} cannot be reached with the Tab key")


def _two_people(left: Path, right: Path) -> bytes:
    """A photo of two people side by side (as a CCTV still may show)."""
    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    height = max(a.height, b.height)
    joined = Image.new("RGB", (a.width + b.width + 40, height), (30, 30, 30))
    joined.paste(a, (0, 0))
    joined.paste(b, (a.width + 40, 0))
    out = io.BytesIO()
    joined.save(out, format="JPEG", quality=92)
    return out.getvalue()


def _identities(shared_dir: Path) -> dict[str, list[Path]]:
    """Identities with at least three photos, leaving out the photos known to be mislabelled."""
    wrong = set((shared_dir / "faces" / "dev" / "MISLABELLED.txt").read_text().split())
    groups = {
        name: [p for p in paths if p.name not in wrong and str(p) not in wrong]
        for name, paths in dev_photos(shared_dir).items()
    }
    return {name: paths for name, paths in sorted(groups.items()) if len(paths) >= 3}


def test_the_whole_story(
    deployment: Deployment, shared_dir: Path, tmp_path: Path, settings: Settings
) -> None:
    shots = Path(os.environ.get("FACEWARDEN_TEST_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    url = deployment.url
    admin_token = deployment.cli(
        "admin", "create", "--email", "admin@facewarden.example", "--name", "Alex Admin"
    ).splitlines()[-1]
    second_token = deployment.cli(
        "admin", "create", "--email", "second@facewarden.example", "--name", "Sam Second"
    ).splitlines()[-1]

    with launch(deployment.settings, tmp_path / "profile") as browser:
        cast = Cast(browser, deployment, shots)

        # Anyone: the registration form, then "check your e-mail".
        visitor = cast.page()
        visitor.goto(f"{url}/console/register")
        chief = person(email="commissaire.martin@interieur.gouv.fr")
        visitor.get_by_label("Agency name").fill("Police judiciaire de Lyon")
        visitor.get_by_label("Kind of agency").select_option("police")
        visitor.get_by_label("Country (two-letter code, e.g. FR)").fill("FR")
        visitor.get_by_label("Jurisdiction").fill("Rhône")
        visitor.get_by_label("First name").fill("Claire")
        visitor.get_by_label("Last name").fill("Martin")
        visitor.get_by_label("Phone (international, e.g. +33 4 72 00 00 00)").fill(chief["phone"])
        visitor.get_by_label("E-mail").fill(chief["email"])
        visitor.get_by_label("Job function").fill("Commissaire divisionnaire")
        visitor.get_by_label("What will your agency use FaceWarden for?").fill(
            "Identify suspects of serious crimes from CCTV stills, under judicial warrant."
        )
        visitor.get_by_role("button", name="Send the registration").click()
        visitor.get_by_role("heading", name="Check your e-mail").wait_for()
        cast.shoot(visitor, "anyone-registered")

        # The administrator approves it from the queue, with a reason.
        admin = cast.with_key(admin_token)
        go(admin, "Review queue")
        decide(
            admin.page,
            "Police judiciaire de Lyon",
            "Checked with the Ministry's directory of judicial police units.",
            "Approve the registration",
        )

        # The chief reads the claim e-mail and claims the account with a passkey.
        supervisor = cast.claim(chief["email"])
        assert supervisor.page.get_by_text("You are signed in as a supervisor").is_visible()

        # She asks for the accounts of her team; the administrator approves them.
        team = {
            "supervisor": person(
                first_name="Julien", last_name="Roux", email="lieutenant.roux@interieur.gouv.fr"
            ),
            "investigator": person(
                first_name="Awa", last_name="Diallo", email="brigadier.diallo@interieur.gouv.fr"
            ),
            "colleague": person(
                first_name="Hugo", last_name="Leroy", email="brigadier.leroy@interieur.gouv.fr"
            ),
        }
        go(supervisor, "Account requests")
        for role, someone in team.items():
            page = supervisor.page
            page.get_by_label("Role").select_option(
                "supervisor" if role == "supervisor" else "investigator"
            )
            page.get_by_label("First name").fill(someone["first_name"])
            page.get_by_label("Last name").fill(someone["last_name"])
            page.get_by_label("Phone (international, e.g. +33 4 72 00 00 00)").fill(
                someone["phone"]
            )
            page.get_by_label("E-mail").fill(someone["email"])
            page.get_by_label("Job function").fill(someone["job_title"])
            with page.expect_navigation():
                page.get_by_role("button", name="Send the request").click()
            page.get_by_role("status").wait_for()
        assert_accessible(supervisor.page)
        go(admin, "Review queue")
        for role, someone in team.items():
            kind = "supervisor" if role == "supervisor" else "investigator"
            decide(
                admin.page,
                f"{someone['first_name']} {someone['last_name']}, {kind}",
                "Requested by the agency's head; checked by phone.",
                "Approve the account",
            )
        cast.shoot(admin.page, "admin-queue")
        second_supervisor = cast.claim(team["supervisor"]["email"])
        investigator = cast.claim(team["investigator"]["email"])
        colleague = cast.claim(team["colleague"]["email"])

        # Platform staff: a curator, and an oversight account a second administrator approves.
        staff = {
            "curator": person(first_name="Nadia", last_name="Benali", job_title="Curator"),
            "oversight": person(first_name="Paul", last_name="Girard", job_title="Inspector"),
        }
        for role, someone in staff.items():
            body: dict[str, Any] = {"role": role, "person": someone}
            if role == "oversight":
                body["reason"] = "the oversight body named by the statute"
            deployment.api("POST", "/v1/staff", admin_token, body)
        second = cast.with_key(second_token)
        go(second, "Review queue")
        who = staff["oversight"]
        decide(
            second.page,
            f"{who['first_name']} {who['last_name']}, oversight",
            "Named by the statute's oversight body.",
            "Approve the account",
        )
        curator = cast.claim(staff["curator"]["email"])
        oversight = cast.claim(staff["oversight"]["email"])

        # The curator enrols real faces, each with its provenance.
        people = _identities(shared_dir)
        target, *others = list(people)[:4]
        enrolled = {
            f"https://press.example.org/{name.lower()}/1.jpg": people[name][0]
            for name in [target, *others]
        }
        for source_url, photo in enrolled.items():
            go(curator, "Enrol a photo")
            page = curator.page
            page.get_by_label("Photo (JPEG, PNG or WebP)").set_input_files(str(photo))
            page.get_by_label("Source URL").fill(source_url)
            page.get_by_label("Collected at (UTC)").fill("2026-03-02T09:30")
            page.get_by_label("Basis of collection").select_option("public_record")
            with page.expect_navigation():
                page.get_by_role("button", name="Enrol the photo").click()
            page.get_by_role("status").wait_for()
        go(curator, "Gallery")
        for source_url in enrolled:
            assert curator.page.get_by_text(source_url).count() >= 1
        cast.shoot(curator.page, "curator-gallery")

        # The chief records the legal basis; four eyes: the second supervisor approves it.
        page = supervisor.page
        page.goto(f"{url}/console/legal-bases/new")
        page.get_by_label("Case number").fill(_CASE)
        page.get_by_label("Offence category").select_option(index=1)
        page.get_by_label("Legal provision relied on").fill("Code de procédure pénale, art. 230-6")
        page.get_by_label("Kind of authorisation").select_option("judicial")
        page.get_by_label("Warrant or decision number (leave empty if urgent)").fill("JI-2026-1187")
        page.get_by_label("Issued by (court or authority; leave empty if urgent)").fill(
            "Juge d'instruction, tribunal judiciaire de Lyon"
        )
        page.get_by_label("Issued at (UTC)").fill("2026-11-28T09:00")
        page.get_by_label("Expires at (UTC)").fill("2027-02-28T09:00")
        page.get_by_label("Why a face search is necessary here").fill(
            "The armed robbery of 20 November was filmed; no witness could name the robber."
        )
        page.get_by_label("Searches allowed under this basis").fill("3")
        page.get_by_role("button", name="Record the legal basis").click()
        page.wait_for_load_state("load")
        page.goto(f"{url}/console/agency/legal-bases")
        assert page.get_by_text("You wrote this; another supervisor must approve it.").is_visible()
        go(second_supervisor, "Legal bases to approve")
        decide(
            second_supervisor.page,
            f"Case {_CASE}",
            "The warrant covers comparing the CCTV still with the gallery.",
            "Approve the legal basis",
        )
        cast.shoot(second_supervisor.page, "supervisor-legal-bases")

        # The investigator searches a still of two people, by keyboard alone.
        still = tmp_path / "cctv-still.jpg"
        still.write_bytes(_two_people(people[target][1], people[others[-1]][2]))
        page = investigator.page
        go(investigator, "New search")
        chooser_target = page.get_by_label("Probe photo (JPEG, PNG or WebP)")
        tab_to(page, chooser_target)
        with page.expect_file_chooser() as chosen:
            page.keyboard.press("Space")
        chosen.value.set_files(str(still))
        tab_to(page, page.get_by_label("Legal basis"))
        page.keyboard.press("ArrowDown")  # the only approved basis
        page.keyboard.press("Tab")
        page.keyboard.type("Identify the robber in the CCTV still of 20 November.")
        tab_to(page, page.get_by_role("button", name="Run the search"))
        page.keyboard.press("Enter")
        page.get_by_role("group", name="Which face should be searched?").wait_for()
        assert_accessible(page)
        faces = {
            int(m.group(1)): int(m.group(2))
            for label in page.locator("fieldset.faces label").all_inner_texts()
            if (m := _FACE_LABEL.match(label))
        }
        assert len(faces) == 2, faces
        leftmost = min(faces, key=faces.__getitem__)  # the robber stands on the left
        first_radio = page.locator("fieldset.faces input[type=radio]").first
        tab_to(page, first_radio)
        page.keyboard.press("Space")
        for _ in range(leftmost - 1):
            page.keyboard.press("ArrowDown")
        assert page.get_by_label(re.compile(rf"^Face {leftmost} ")).is_checked()
        tab_to(page, page.get_by_role("button", name="Run the search"))
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Search results").wait_for()
        assert page.get_by_text(re.compile("investigative leads only", re.I)).first.is_visible()
        ranked = page.locator("ol.candidates > li")
        assert ranked.count() >= 1
        first = ranked.first
        target_url = next(u for u in enrolled if f"/{target.lower()}/" in u)
        assert first.get_by_text(target_url).count() == 1, first.inner_text()
        assert first.get_by_text("press.example.org").count() >= 1
        assert first.get_by_text("2026-03-02").count() >= 1
        assert first.get_by_role("img").evaluate("(img) => img.naturalWidth") > 0
        cast.shoot(page, "investigator-results")
        search_id = page.url.rstrip("/").rsplit("/", 1)[-1]
        with page.expect_download() as fetched:
            page.get_by_role("link", name="Download the receipt (JSON)").click()
        receipt = tmp_path / "receipt.json"
        fetched.value.save_as(receipt)
        key = deployment.cli("ledger", "key").strip()
        verified = subprocess.run(
            [VERIFY, "receipt", str(receipt), "--key", key],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        go(investigator, "Search history")
        assert page.get_by_text("not yet reviewed").count() >= 1

        # Two colleagues review: the second investigator by keyboard, the second supervisor.
        for reviewer, note in (
            (colleague, "Same scar above the left eyebrow; same hairline."),
            (second_supervisor, "Ears and jawline match; the hairline too."),
        ):
            page = reviewer.page
            go(reviewer, "Reviews")
            page.get_by_role("link", name=re.compile("^Review ")).first.click()
            page.get_by_role("heading", name="Review a search").wait_for()
            assert (
                page.get_by_role("img", name="The probe face").first.evaluate(
                    "(img) => img.naturalWidth"
                )
                > 0
            )
            verdicts = page.get_by_role("group", name="Your verdict on candidate 1")
            tab_to(page, verdicts.get_by_role("radio", name="Not now"))
            page.keyboard.press("ArrowDown")  # the next choice: "Possible match"
            assert verdicts.get_by_role("radio", name="Possible match").is_checked()
            page.keyboard.press("Tab")
            page.keyboard.type(note)
            tab_to(page, page.get_by_role("button", name="Record my verdicts"))
            page.keyboard.press("Enter")
            page.get_by_text("Your verdicts are recorded.").wait_for()
        assert page.get_by_text("confirmed lead").first.is_visible()
        cast.shoot(page, "reviewer-review")

        # The police file prints; its PDF carries the case, the lead and the receipt.
        page = investigator.page
        page.goto(f"{url}/console/records/{search_id}")
        page.get_by_role("heading", name="Face search record").wait_for()
        assert page.get_by_text(_CASE).first.is_visible()
        assert page.get_by_text("confirmed lead").first.is_visible()
        cast.shoot(page, "police-file")
        page.emulate_media(media="print")
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
        page.emulate_media(media="screen")

        # Oversight reads the ledger and the report, and is told how to check them offline.
        page = oversight.page
        go(oversight, "Ledger")
        assert page.get_by_text("facewarden-verify audit live").count() >= 1
        go(oversight, "Report")
        page.get_by_role("button", name="Show the report").click()
        page.get_by_role("heading", name=re.compile("^From ")).wait_for()
        assert page.locator("svg").count() >= 1
        cast.shoot(page, "oversight-report")
        with page.expect_download() as fetched:
            page.get_by_role("button", name="Download as CSV").click()
        csv_path = tmp_path / "report.csv"
        fetched.value.save_as(csv_path)
        assert csv_path.read_text().count("\n") >= 2

    # The ledger holds every act of the story, and verifies and audits offline.
    engine = create_engine(deployment.settings.database_url)
    try:
        with engine.connect() as conn:
            held = Counter(conn.execute(select(entries.c.type)).scalars())
    finally:
        engine.dispose()
    expected = {
        "admin:create": 2,
        "credential:issue": 2,  # the two administrators' first keys
        "registration:submit": 1,
        "registration:approve": 1,
        "registration:claim": 1,
        "account:request": 4,  # three for the agency, one proposed oversight account
        "account:approve": 3,
        "oversight:create": 1,  # the second administrator's approval
        "curator:create": 1,
        "account:claim": 5,
        "passkey:enrol": 8,
        "session:start": 8,
        "gallery:enroll": 4,
        "legal_basis:create": 1,
        "legal_basis:approve": 1,
        "search:refuse": 1,  # the photo of two people, before a face was chosen
        "search:run": 1,
        "review:record": 2,
    }
    views = {"thumbnail:view", "probe:view"}  # one per page view: at least one per reviewer
    assert {t: n for t, n in held.items() if t not in views} == expected
    assert held["probe:view"] >= 2 and held["thumbnail:view"] >= 2
    bundle = tmp_path / "bundle"
    deployment.cli("ledger", "export", str(bundle))
    audited = subprocess.run(
        [VERIFY, "audit", "bundle", str(bundle), "--key", key],
        capture_output=True,
        text=True,
        check=False,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
