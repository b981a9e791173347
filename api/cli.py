"""The ``facewarden`` command: set up, serve and administer the service.

Exit codes: 0 success, 1 a failure the message explains, 2 a usage error (click's).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from api.settings import ConfigError, Settings
from ledger.cli import quiet_on_closed_pipe

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy.orm import Session

    from biometrics.index import MilvusIndex
    from governance.core.effects import Handler
    from governance.core.recording import SigningKeys
    from governance.core.work import Units
    from governance.gallery.doctor import Findings, Repair, Stores

__all__ = ["cli", "main"]


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _explained() -> Iterator[None]:
    """Turn expected failures into one clear line and exit code 1, never a traceback."""
    try:
        yield
    except (click.ClickException, BrokenPipeError):
        raise
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".strip()) from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in {"api", "governance", "ledger", "biometrics"}:
            fields = getattr(exc, "fields", None) or {}
            details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
            raise click.ClickException(f"{exc} ({details})" if details else str(exc)) from exc
        if type(exc).__module__.startswith("sqlalchemy"):
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise click.ClickException(
                f"database error ({reason}): check FACEWARDEN_DATABASE_URL and run "
                "`facewarden db upgrade`"
            ) from exc
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="facewarden")
def cli() -> None:
    """FaceWarden: accountable face search with a signed audit ledger.

    Settings come from FACEWARDEN_* environment variables (see the README).
    """


@cli.command()
@click.option("--no-tls", is_flag=True, help="Do not create a self-signed TLS certificate.")
def init(no_tls: bool) -> None:
    """Create the data directory, migrate the database, create the ledger key and a TLS cert."""
    from api.bootstrap import initialize

    settings = _settings()
    with _explained():
        report = initialize(settings, tls=not no_tls, progress=click.echo)
    if report.certificate_fingerprint:
        click.echo(f"TLS certificate SHA-256 fingerprint: {report.certificate_fingerprint}")
    click.echo(f"ready: data directory {report.data_dir}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option("--cert", type=click.Path(dir_okay=False, path_type=Path), help="TLS certificate.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="TLS private key.")
@click.option(
    "--http",
    "plain_http",
    is_flag=True,
    help="Serve plain HTTP behind a TLS-terminating proxy (FACEWARDEN_TRUSTED_PROXIES).",
)
def serve(
    host: str,
    port: int,
    workers: int,
    threads: int,
    cert: Path | None,
    key: Path | None,
    plain_http: bool,
) -> None:
    """Serve the API with hypercorn (HTTPS on 127.0.0.1:8443 by default)."""
    from api.bootstrap import certificate_fingerprint
    from api.server import can_share_index, run_server

    settings = _settings()
    if plain_http and (cert or key):
        raise click.UsageError("--http and --cert/--key exclude each other")
    if bool(cert) != bool(key):
        raise click.UsageError("give both --cert and --key")
    if plain_http and not settings.trusted_proxies:
        raise click.ClickException(
            "--http honours X-Forwarded-For only from the proxies in FACEWARDEN_TRUSTED_PROXIES: "
            "set it to the proxy's address(es), e.g. FACEWARDEN_TRUSTED_PROXIES=127.0.0.1"
        )
    if workers > 1 and settings.milvus_is_local and not can_share_index(settings):
        raise click.UsageError(
            f"{workers} workers cannot share the milvus-lite file {settings.milvus_uri}: run "
            f"`python -m biometrics.index_server --data {settings.milvus_uri} --port 19530` and "
            "set FACEWARDEN_MILVUS_URI=http://127.0.0.1:19530 (or use a Milvus server), or "
            "serve with --workers 1"
        )
    cert_path = cert or settings.tls_cert_path
    key_path = key or settings.tls_key_path
    with _explained():
        # The checks every worker makes at start-up (database URL, ledger key and secret, model
        # pack), made once here first, so a missing piece is one line before anything forks.
        from api.app import create_app
        from api.context import EXTENSION

        create_app(settings, witnessing=False).extensions[EXTENSION].engine.dispose()
        if not plain_http:
            for path, var in ((cert_path, "TLS_CERT_PATH"), (key_path, "TLS_KEY_PATH")):
                if not os.access(path, os.R_OK):
                    raise ConfigError(
                        f"cannot read {path}: run `facewarden init`, pass --cert/--key, or set "
                        f"FACEWARDEN_{var}"
                    )
            click.echo(f"TLS certificate SHA-256 fingerprint: {certificate_fingerprint(cert_path)}")
        scheme = "http" if plain_http else "https"
        click.echo(f"serving on {scheme}://{host}:{port} ({workers} worker(s) x {threads} threads)")
        status = run_server(
            settings,
            bind=f"{host}:{port}",
            workers=workers,
            threads=threads,
            tls=None if plain_http else (cert_path, key_path),
        )
    if status:
        raise click.ClickException(f"a worker stopped with exit status {status}; see above")


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database to the newest (or the given) revision."""
    from api.bootstrap import ensure_sqlite_directory
    from governance.core.db import make_engine
    from governance.core.migrate import current_revision, upgrade

    settings = _settings()
    with _explained():
        ensure_sqlite_directory(settings.database_url)
        engine = make_engine(settings.database_url)
        upgrade(engine, revision)
        click.echo(f"database at revision {current_revision(engine)}")
        engine.dispose()


@cli.group()
def admin() -> None:
    """Platform administrators."""


@admin.command("create")
@click.option("--email", required=True, help="The administrator's e-mail address.")
@click.option("--name", required=True, help="The administrator's full name.")
def admin_create(email: str, name: str) -> None:
    """Create a platform administrator; its API key is printed once, alone on the last line."""
    from datetime import timedelta

    from governance.identity.admin import create_admin

    settings = _settings()
    with _explained(), _units(settings) as units, units() as work:
        account, key = create_admin(
            work, email=email, name=name, ttl=timedelta(days=settings.credential_ttl_days)
        )
    click.echo(f"created administrator {account.id} ({account.email})")
    click.echo("its API key follows; it is shown only this once:", err=True)
    click.echo(key)


@cli.group()
def openapi() -> None:
    """The OpenAPI document."""


@openapi.command("write")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--problems",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs") / "problems.md",
    show_default=True,
    help="Where to write the table of problem types.",
)
def openapi_write(path: Path | None, problems: Path) -> None:
    """Write the OpenAPI document generated from the app (default: openapi/openapi.json)."""
    from api.spec import generate_spec, problems_markdown

    target = path or Path("openapi") / "openapi.json"
    with _explained():
        for where, text in (
            (target, json.dumps(generate_spec(), indent=2, sort_keys=True) + "\n"),
            (problems, problems_markdown()),
        ):
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_text(text)
            click.echo(f"wrote {where}")


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One unit of work on the configured database, for commands that change or read state."""
    from governance.core.db import make_engine, make_session_factory, unit_of_work

    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


@contextmanager
def _units(settings: Settings) -> Iterator[Units]:
    """Units of work on the configured database, signing with the configured key, at one now.

    The same hooks as the app (``governance.wiring``); mail they queue goes out on commit.
    """
    from api.context import build_mailer, claim_policy
    from governance import wiring
    from governance.core import mail
    from governance.core.db import make_engine, make_session_factory
    from governance.core.work import Units

    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    mailer = build_mailer(settings)
    ttl = claim_policy(settings).ttl

    def deliver(ids: list[UUID]) -> None:
        mail.deliver(sessions, mailer, clock=lambda: datetime.now(UTC), ids=ids, stale_after=ttl)

    try:
        yield Units(
            sessions=sessions,
            keys=_keys(settings),
            now=datetime.now(UTC),
            hooks=wiring.hooks(),
            deliver=deliver,
            clock=lambda: datetime.now(UTC),
        )
    finally:
        engine.dispose()


@contextmanager
def _effect_handlers(settings: Settings) -> Iterator[Callable[[], dict[str, Handler]]]:
    """What builds the handlers of pending effects (the vector index and the photo store),
    opened only if one is pending, and closed on the way out."""
    from api.context import build_photo_store, open_index
    from biometrics.packs import load_pack
    from governance.gallery.effects import effect_handlers

    opened: list[MilvusIndex] = []

    def handlers() -> dict[str, Handler]:
        pack = load_pack(settings.models_dir / settings.model_pack)
        opened.append(open_index(settings, pack))
        opened[0].ensure_collection(pack.dimension)
        return effect_handlers(opened[0], build_photo_store(settings))

    try:
        yield handlers
    finally:
        for index in opened:
            index.close()


def _keys(settings: Settings) -> SigningKeys:
    from api.context import loaded_signing_keys

    return loaded_signing_keys(settings)


@cli.group()
def ledger() -> None:
    """The audit ledger: verifier key, export, key rotation."""


@ledger.command("key")
def ledger_key() -> None:
    """Print the current verifier key (C2SP name+hash+base64 form) to pin in verifiers."""
    settings = _settings()
    with _explained():
        click.echo(_keys(settings).current().verifier_key)


@ledger.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def ledger_export(directory: Path) -> None:
    """Write a self-contained bundle of the whole ledger for offline verification."""
    from ledger.storage import export_bundle

    settings = _settings()
    with _explained(), _session(settings) as session:
        size = export_bundle(session, directory)
    click.echo(f"exported {size} entries to {directory}")
    click.echo(f"verify with: facewarden-verify bundle {directory} --key '<pinned verifier key>'")


@ledger.command("rotate-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def ledger_rotate_key(yes: bool) -> None:
    """Replace the signing key; the old key signs a key:rotate entry naming the new one."""
    import getpass

    from ledger.entry import Actor
    from ledger.keys import rotate_key

    settings = _settings()
    if not yes:
        click.confirm("Rotate the ledger signing key now?", abort=True)
    with _explained():
        with _session(settings) as session:
            _appended, new = rotate_key(
                session,
                key_path=settings.ledger_key_path,
                name=settings.ledger_origin,
                passphrase=settings.ledger_key_passphrase,
                now=datetime.now(UTC),
                actor=Actor(kind="operator", id=getpass.getuser(), agency=None),
            )
        click.echo(f"rotated: new verifier key {new.verifier_key}")
        click.echo(
            "restart or keep serving: running workers pick up the new key on their next append"
        )


@cli.group()
def models() -> None:
    """Face model packs (detector + recognizer, verified by sha256)."""


def _progress_printer(step: str, done: int, total: int) -> None:
    if total:
        click.echo(f"  {step}: {done}/{total}", err=True)
    else:
        click.echo(f"  {step}", err=True)


@models.command("install")
@click.argument("name")
def models_install(name: str) -> None:
    """Install a pack by name (starter; buffalo_l and buffalo_s where the internet is reachable)."""
    from biometrics.packs import install_pack

    settings = _settings()
    with _explained():
        installed = install_pack(name, settings.models_dir, progress=_progress_printer)
    click.echo(f"installed {installed.name} {installed.version} in {installed.directory}")
    click.echo(f"licence: {installed.licence}")


@models.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Name to install the pack under.")
@click.option("--licence", default=None, help="Licence statement to record in pack.json.")
@click.option(
    "--match-threshold",
    "--threshold",
    "threshold",
    type=click.FloatRange(-1, 1, min_open=True),
    default=None,
    help="Calibrated match threshold: the floor of every search (with --match-far).",
)
@click.option(
    "--match-far",
    "far",
    type=click.FloatRange(0, 1),
    default=None,
    help="The false-accept rate measured at --match-threshold.",
)
def models_import(
    source: Path, name: str, licence: str | None, threshold: float | None, far: float | None
) -> None:
    """Import an insightface-style pack from a directory or zip (e.g. buffalo_l.zip).

    Files calibrated here (the CI pack's) take that calibration; any others need
    --match-threshold and --match-far, as measured by `facewarden models calibrate`.
    """
    from biometrics.packs import import_pack

    settings = _settings()
    with _explained():
        imported = import_pack(
            source,
            settings.models_dir,
            name=name,
            licence=licence,
            match_threshold=threshold,
            match_far=far,
        )
    click.echo(
        f"imported {imported.name} ({imported.dimension}-d) in {imported.directory}, threshold "
        f"{imported.match_threshold:.2f} at FAR {imported.match_far:.1e}"
    )


@models.command("calibrate")
@click.argument("name")
@click.option(
    "--set",
    "labelled",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A labelled set: manifest.csv (file, identity); photos in MISLABELLED.txt are left out.",
)
@click.option("--far", default=1e-3, show_default=True, type=click.FloatRange(1e-6, 0.5))
@click.option("--write", is_flag=True, help="Record the result in the pack's pack.json.")
def models_calibrate(name: str, labelled: Path, far: float, write: bool) -> None:
    """Measure an installed pack's match threshold at a false-accept rate on a labelled set."""
    from biometrics.evaluation import calibrate_set
    from biometrics.packs import build_pipeline, load_pack, record_calibration

    settings = _settings()
    with _explained():
        pack = load_pack(settings.models_dir / name, calibrated=False)
        result = calibrate_set(build_pipeline(pack), labelled, target_far=far)
        click.echo(result.table(name))
        if write:
            fields = result.manifest_fields()
            record_calibration(pack, fields["match_threshold"], fields["match_far"])
            click.echo(f"recorded in {pack.directory / 'pack.json'}")


@models.command("list")
def models_list() -> None:
    """List installed packs; the one in use (FACEWARDEN_MODEL_PACK) is starred."""
    from biometrics.packs import list_packs

    settings = _settings()
    with _explained():
        packs = list_packs(settings.models_dir)
    if not packs:
        click.echo(f"no packs in {settings.models_dir}: run `facewarden models install starter`")
        return
    for p in packs:
        star = "*" if p.name == settings.model_pack else " "
        click.echo(
            f"{star} {p.name:<12} {p.version:<8} {p.detector_kind:<6} {p.dimension}-d "
            f"threshold {p.match_threshold:.2f} FAR {p.match_far:.1e}  {p.licence}"
        )


@cli.group()
def gallery() -> None:
    """The gallery of enrolled faces."""


@gallery.command("ingest")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1, 256))
def gallery_ingest(manifest: Path, batch_size: int) -> None:
    """Enrol the photos a manifest lists (CSV or JSON lines), resumably.

    Each row gives path (relative to the manifest), source_url, collected_at and
    collection_basis, and optionally subject_ref. Photos already enrolled are skipped, so an
    interrupted run can simply be started again.
    """
    from api.ingest import ingest_manifest

    settings = _settings()
    with _explained():
        summary = ingest_manifest(settings, manifest, batch_size=batch_size)
    click.echo(
        f"enrolled {summary.enrolled} photos ({summary.faces} faces), skipped "
        f"{summary.skipped} already enrolled, rejected {len(summary.rejects)}"
    )
    for row, reason in summary.rejects:
        click.echo(f"  rejected {row}: {reason}")


@gallery.command("block")
@click.argument("site")
@click.option("--reason", required=True, help="Why, e.g. 'cease-and-desist letter'.")
@click.option("--reference", required=True, help="The letter's date and sender, a case number.")
def gallery_block(site: str, reason: str, reference: str) -> None:
    """Block a source site (opt-out) and purge every face enrolled from it, with progress.

    The block is committed first: from then on enrolment from the site is refused and searches
    never return its faces; the purge then removes them in batches.
    """
    import getpass

    from tqdm import tqdm

    from api.context import build_engines
    from biometrics.packs import load_pack
    from governance.gallery.opt_outs import PurgeProgress, block_site
    from governance.gallery.photos import FaceEngines
    from ledger.entry import Actor

    settings = _settings()
    actor = Actor(kind="operator", id=getpass.getuser(), agency=None)
    bars: list[tqdm[None]] = []
    purged = 0

    def progress(done: PurgeProgress) -> None:
        nonlocal purged
        if not bars:
            click.echo(
                f"blocked {done.site}: enrolment refused and searches exclude it from now on"
            )
            bars.append(tqdm(total=done.total, unit="face", desc="purge", disable=None))
        bars[0].update(done.purged - purged)
        purged = done.purged

    built: list[FaceEngines] = []

    def engines() -> FaceEngines:  # loaded once the block has committed
        built.append(
            build_engines(settings, model_pack=load_pack(settings.models_dir / settings.model_pack))
        )
        return built[0]

    with _explained():
        try:
            with _units(settings) as units:
                policy = block_site(
                    units,
                    engines,
                    site=site,
                    reason=reason,
                    reference=reference,
                    actor=actor,
                    progress=progress,
                )
        finally:
            for bar in bars:
                bar.close()
            for loaded in built:
                loaded.index.close()
    click.echo(f"purged {purged} faces enrolled from {policy.site}")


@gallery.command("reindex")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def gallery_reindex(yes: bool) -> None:
    """Rebuild the gallery's vector index as FACEWARDEN_MILVUS_INDEX and its parameters say.

    Run it after changing the index type or its build parameters. Searches wait (or fail with
    503) while the collection reloads; a Milvus server then builds in the background, and the
    progress is shown until every face is indexed.
    """
    import time

    from tqdm import tqdm

    from api.context import open_index
    from biometrics.packs import load_pack

    settings = _settings()
    with _explained():
        pack = load_pack(settings.models_dir / settings.model_pack)
        index = open_index(settings, pack)
        try:
            before = index.index_type()
            if not yes:
                click.confirm(
                    f"rebuild {index.collection} ({before or 'no index'} -> "
                    f"{settings.milvus_index}); searches wait until it is loaded again?",
                    abort=True,
                )
            index.flush()
            index.rebuild_index()
            total = index.count()
            if not settings.milvus_is_local:  # a server builds in the background
                done, _ = index.index_progress()
                with tqdm(total=total, unit="face", desc="index", disable=None) as bar:
                    bar.update(done)
                    while done < total:
                        time.sleep(2)
                        now_done, _ = index.index_progress()
                        bar.update(now_done - done)
                        done = now_done
        finally:
            index.close()
    click.echo(f"{index.collection}: indexed with {settings.milvus_index} ({total} faces)")


@cli.command()
@click.option("--repair", is_flag=True, help="Repair what the database can put right.")
@click.option(
    "--grace",
    default=10,
    show_default=True,
    type=click.IntRange(0, 24 * 60),
    help="Minutes: younger files are left alone; vectors are confirmed this much later.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(repair: bool, grace: int, as_json: bool) -> None:
    """Compare the gallery's rows with the vector index and the photo store.

    Reports faces missing from the index, vectors without a face row, stored files no row
    names, rows whose file is missing and temporary files left by an interrupted write; files
    younger than --grace are left alone. --repair indexes the missing faces again from their
    stored embeddings, deletes the leftovers (vectors only when a second look --grace later
    confirms them) and records a gallery:repair ledger entry; rows whose file is missing are
    reported, not deleted. Safe while the service serves; a milvus-lite index file, though, is
    held open by the service: stop it first, or serve the file with the index server.

    Exit status: 0 when the gallery is consistent (with --repair: when everything found was
    repaired), 1 when problems were found (remain), or on a failure the message explains.
    """
    import getpass
    from datetime import timedelta

    from governance.gallery.doctor import examine
    from governance.gallery.doctor import repair as repair_gallery
    from ledger.entry import Actor

    settings = _settings()

    def progress(line: str) -> None:
        click.echo(f"  {line}", err=True)

    repaired: Repair | None = None
    with _explained():
        stores = _doctor_stores(settings)
        span = timedelta(minutes=grace)
        try:
            with _units(settings) as units:
                if repair:
                    operator = Actor(kind="operator", id=getpass.getuser(), agency=None)
                    repaired = repair_gallery(
                        units, stores, actor=operator, grace=span, progress=progress
                    )
                    findings, ok = repaired.findings, repaired.complete
                else:
                    findings = examine(units, stores, grace=span, progress=progress)
                    ok = findings.clean
        finally:
            stores.index.close()
    if as_json:
        click.echo(json.dumps(_doctor_json(findings, repaired, ok), indent=2))
    else:
        _print_findings(findings, repaired, grace)
        click.echo(_verdict(repaired, ok))
    if not ok:
        raise SystemExit(1)


def _doctor_stores(settings: Settings) -> Stores:
    """The collection of the pack in use and the photo store, for ``doctor``.

    Raises PackError, IndexUnavailable, ClickException (a milvus-lite file another process
    holds open).
    """
    from api.context import build_photo_store, open_index
    from biometrics.errors import IndexUnavailable
    from biometrics.packs import load_pack
    from governance.gallery.doctor import Stores

    pack = load_pack(settings.models_dir / settings.model_pack)
    try:
        index = open_index(settings, pack)
    except IndexUnavailable as exc:
        if not settings.milvus_is_local:
            raise
        raise click.ClickException(
            f"cannot open the vector index file {settings.milvus_uri}: another process holds "
            "it open (a `facewarden` command, or a server on milvus-lite 3, which cannot share "
            "it). Wait for that command, or serve the file with `python -m "
            "biometrics.index_server` and point FACEWARDEN_MILVUS_URI at it "
            f"(docs/vector-index.md, 'Several workers'). ({exc})"
        ) from exc
    try:
        index.ensure_collection(pack.dimension)
    except BaseException:
        index.close()
        raise
    return Stores(index, build_photo_store(settings), pack.recognizer.sha256)


def _doctor_json(findings: Findings, repaired: Repair | None, ok: bool) -> dict[str, object]:
    import dataclasses

    body: dict[str, object] = {
        "ok": ok,
        "clean": findings.clean,
        "findings": dataclasses.asdict(findings),
    }
    if repaired is not None:
        body["repaired"] = {
            "faces_reindexed": repaired.faces_reindexed,
            "vectors_deleted": repaired.vectors_deleted,
            "files_deleted": repaired.files_deleted,
            "temporary_files_deleted": repaired.temporary_files_deleted,
        }
    return body


_SHOWN = 20
"""Ids listed per kind of problem in the human-readable report (``--json`` lists them all)."""


def _print_findings(findings: Findings, repaired: Repair | None, grace: int) -> None:
    others = f" ({findings.other_faces} faces of other recognizers)" if findings.other_faces else ""
    click.echo(
        f"{findings.collection}: {findings.faces} faces, {findings.vectors} vectors, "
        f"{findings.stored_files} stored files{others}"
    )
    sections = [
        ("faces missing from the index", list(findings.unindexed_faces)),
        ("vectors without a face row", list(findings.vectors_without_rows)),
        ("stored files no row names", list(findings.files_without_rows)),
        ("stale temporary files", list(findings.stale_temporary_files)),
        (
            "rows whose stored file is missing (restore the files from a backup)",
            [f"{m.kind} {m.row_id}: {m.sha256}" for m in findings.rows_without_files],
        ),
    ]
    for title, items in sections:
        click.echo(f"  {title}: {len(items)}")
        for item in items[:_SHOWN]:
            click.echo(f"    {item}")
        if len(items) > _SHOWN:
            click.echo(f"    ... and {len(items) - _SHOWN} more (--json lists them all)")
    if findings.recent:
        click.echo(f"  left alone, younger than {grace} min: {findings.recent} files")
    if repaired is not None:
        click.echo(
            f"repaired: {repaired.faces_reindexed} faces indexed again, "
            f"{repaired.vectors_deleted} vectors, {repaired.files_deleted} files and "
            f"{repaired.temporary_files_deleted} temporary files deleted"
        )


def _verdict(repaired: Repair | None, ok: bool) -> str:
    if repaired is not None:
        return "repaired" if ok else "repaired what the database can: rows above lack their files"
    if ok:
        return "clean"
    return "problems found: `facewarden doctor --repair` repairs what the database can"


def _backup_passphrase(settings: Settings, *, confirm: bool) -> str:
    """FACEWARDEN_BACKUP_PASSPHRASE, or asked for (twice when it seals)."""
    if settings.backup_passphrase:
        return settings.backup_passphrase
    prompted: str = click.prompt(
        "Backup passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return prompted


@cli.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--include-keys",
    is_flag=True,
    help="Seal the signing key and the ledger secret into the backup with a passphrase.",
)
def backup_command(directory: Path, include_keys: bool) -> None:
    """Back up the database, the photo store and (with --include-keys) the keys into DIRECTORY.

    Safe while the service serves. DIRECTORY must be empty or absent. The vector index is not
    copied: `facewarden restore` indexes the faces again from the embeddings the database keeps.
    The keys are sealed with FACEWARDEN_BACKUP_PASSPHRASE, or a passphrase asked for twice.
    """
    from importlib.metadata import version

    from api.context import build_photo_store
    from biometrics.packs import load_pack
    from governance.core.db import make_engine
    from governance.gallery.backup import KeyFiles, backup

    settings = _settings()
    with _explained():
        pack = load_pack(settings.models_dir / settings.model_pack)
        keys = KeyFiles(settings.ledger_key_path, settings.ledger_secret_path)
        passphrase = _backup_passphrase(settings, confirm=True) if include_keys else None
        engine = make_engine(settings.database_url)
        try:
            done = backup(
                engine,
                photos=build_photo_store(settings),
                target=directory,
                recognizer_sha256=pack.recognizer.sha256,
                app_version=version("facewarden"),
                keys=keys if include_keys else None,
                passphrase=passphrase,
                progress=_progress_printer,
            )
        finally:
            engine.dispose()
    counts = done.manifest["counts"]
    assert isinstance(counts, dict)
    click.echo(
        f"backed up to {directory}: {counts['photos']} photos, {counts['faces']} faces, "
        f"{counts['stored_files']} stored files, {counts['ledger_entries']} ledger entries, "
        + ("keys sealed" if include_keys else "no keys (--include-keys seals them)")
    )
    missing = done.manifest["missing_files"]
    if isinstance(missing, list) and missing:
        click.echo(f"  {len(missing)} files named by rows were removed meanwhile", err=True)


@cli.command("restore")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
def restore_command(directory: Path) -> None:
    """Rebuild the configured data directory from the backup in DIRECTORY.

    Every file is checked against the manifest's SHA-256 first. The configured database must
    not exist yet (SQLite) or hold no tables (PostgreSQL); keys the backup sealed are opened
    with FACEWARDEN_BACKUP_PASSPHRASE (or a passphrase asked for); the vector index is then
    built from the stored embeddings. The restored ledger is the backup's, unchanged.
    """
    from api.context import build_photo_store, open_index
    from biometrics.packs import load_pack
    from governance.core.db import make_engine
    from governance.gallery.backup import KeyFiles, restore

    settings = _settings()
    opened: list[MilvusIndex] = []

    def index() -> MilvusIndex:  # opened once the backup has checked out
        if settings.milvus_is_local:
            Path(settings.milvus_uri).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        opened.append(open_index(settings, pack))
        return opened[0]

    with _explained():
        pack = load_pack(settings.models_dir / settings.model_pack)
        engine = make_engine(settings.database_url)
        try:
            done = restore(
                directory,
                engine,
                photos=build_photo_store(settings),
                keys=KeyFiles(settings.ledger_key_path, settings.ledger_secret_path),
                passphrase=lambda: _backup_passphrase(settings, confirm=False),
                index=index,
                recognizer_sha256=pack.recognizer.sha256,
                dimension=pack.dimension,
                progress=_progress_printer,
            )
        finally:
            for each in opened:
                each.close()
            engine.dispose()
    click.echo(
        f"restored {done.database} database ({done.ledger_entries} ledger entries), "
        f"{done.photos} stored files, {done.faces_indexed} faces indexed into {done.collection}"
    )
    if done.keys:
        click.echo(f"keys restored: {', '.join(done.keys)}")
    else:
        click.echo(
            "no keys restored: put the signing key and ledger secret in place "
            "(FACEWARDEN_LEDGER_KEY_PATH, FACEWARDEN_LEDGER_SECRET_PATH) before serving"
        )


@cli.group("governance")
def governance_group() -> None:
    """Governed records: legal bases and their deadlines."""


@governance_group.command("sweep")
def governance_sweep() -> None:
    """Expire and lapse legal bases past their deadline; purge searches past retention.

    The service settles legal bases as requests arrive; run this from cron, or after
    downtime, so lapsed bases lose their search results even while nobody uses the API, and
    search records older than FACEWARDEN_SEARCH_RETENTION_DAYS are deleted. It also records
    the counts of refused searches of closed windows (search:refuse_repeats).
    """
    from datetime import timedelta

    from governance.legal_basis.values import BasisStatus
    from governance.wiring import housekeeping

    settings = _settings()
    retention = timedelta(days=settings.search_retention_days)
    with _explained(), _units(settings) as units, _effect_handlers(settings) as effects:
        swept = housekeeping(units, retention=retention, effects=effects)
    lapsed = [t for t in swept.transitions if t.status is BasisStatus.LAPSED]
    for t in swept.transitions:
        if t.status is BasisStatus.LAPSED:
            click.echo(
                f"lapsed  {t.basis_id} (case {t.case_number}): "
                f"{t.results_deleted} search results deleted"
            )
        else:
            click.echo(f"expired {t.basis_id} (case {t.case_number})")
    click.echo(
        f"swept: {len(swept.transitions) - len(lapsed)} expired, {len(lapsed)} lapsed, "
        f"{swept.refusal_counts} refusal counts recorded"
    )
    click.echo(f"purged: {swept.purged} search records older than {retention.days} days")
    if swept.effects.applied or swept.effects.failed:
        click.echo(
            f"effects: {swept.effects.applied} pending effects applied, "
            f"{swept.effects.failed} failed"
        )
    if swept.effects.failed:
        raise click.ClickException(
            "some pending effects could not be applied (see the log above); they stay pending "
            "and a running `facewarden serve` applies them itself; otherwise run this again once "
            "the vector index and the photo store can be opened"
        )


@cli.group("mail")
def mail_group() -> None:
    """Mail to people (claim secrets), queued with the act it announces."""


@mail_group.command("deliver")
def mail_deliver() -> None:
    """Deliver every message not delivered yet (after an SMTP outage); exit 1 if any fails.

    Messages go out after the act that queued them commits; a failed delivery is logged and
    kept, and this command retries it. One whose claim secret has expired is not sent and its
    body is erased (an administrator resends the claim). Run it from cron.
    """
    from api.context import build_mailer, claim_policy
    from governance.core.db import make_engine, make_session_factory
    from governance.core.mail import deliver

    settings = _settings()
    with _explained():
        engine = make_engine(settings.database_url)
        try:
            report = deliver(
                make_session_factory(engine),
                build_mailer(settings),
                clock=lambda: datetime.now(UTC),
                stale_after=claim_policy(settings).ttl,
            )
        finally:
            engine.dispose()
    click.echo(f"delivered: {report.sent} sent, {report.failed} failed")
    if report.failed:
        raise SystemExit(1)


def main() -> None:
    """Console-script entry point; ``facewarden … | head`` ends quietly."""
    # Everything a command writes under the data directory (database, WAL, index, photos, keys,
    # mail) is the owner's alone. Here rather than in ``cli``, which tests invoke in-process.
    os.umask(0o077)
    sys.exit(quiet_on_closed_pipe(lambda: cli.main(prog_name="facewarden")))


if __name__ == "__main__":  # pragma: no cover
    main()
