"""A backup of the province restored into a new database, and a school opened from it over HTTP.

The commands are docs/operations.md's, "Backups and restore": `pg_dump -Fc` of the whole
database (public, the template, every school's schema), `createdb`, `pg_restore -j 2` into the
new database, the documents directory copied from the same moment; then a portal process started
on the new database and the restored documents, and a homeroom teacher who logs in with both
factors finds the grade book's scores, downloads the issued record's PDF byte for byte, and the
audit rows are all there. Then one school's schema alone (`pg_dump -n`), restored over a loss in
the new database, and `migrate_schemas --schema`.

The school's data is made in a source database of the test's own, a copy of the test database
(pg_dump, pg_restore), by a manage.py process (school_setup): an issued record, its outbox message
and its index row are counted province-wide by other tests, and signed records are never deleted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.conf import settings
from django.db import connection

from portal.choices import Role
from portal.clone import pg_dump_binary
from portal.models import AuditEntry, RoleAssignment, User
from tests.conftest import PASSWORD
from tests.signing.world import confirmed_class, homeroom_teacher_for, signing_school
from tests.signing_kit import issue

ROOT = Path(__file__).resolve().parents[2]
PRINCIPAL_NAME = "Trịnh Hiệu Trưởng"
SCORE = "9.3"  # the one score saved through the grade book's service (audited)
SHOWN = "9,3"  # as the grade book shows it


@dataclasses.dataclass(frozen=True)
class Restored:
    url: str  # the portal process on the restored database
    env: dict[str, str]  # its environment (DATABASE_URL: the restored database)
    log: Path
    database: str
    school_backup: Path  # the school's schema alone (pg_dump --schema)
    bin_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    # The binaries are pg_dump's siblings (portal.clone.pg_dump_binary) with fixed arguments.
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args[0]} failed ({result.returncode}): {result.stderr}"
    return result


def client_tools() -> Path:
    """The folder of pg_dump, pg_restore, createdb, dropdb: of the server's own major version when
    installed (Debian's postgresql-client-NN), else portal.clone's pg_dump (newer than the server).
    A newer pg_restore writes settings an older server refuses (pg_restore 17 into PostgreSQL 15:
    `SET transaction_timeout`), so docs/operations.md asks for the server's version."""
    own = Path(f"/usr/lib/postgresql/{connection.pg_version // 10000}/bin")
    if (own / "pg_restore").exists():
        return own
    pg_dump = Path(pg_dump_binary() or "")
    assert pg_dump.name == "pg_dump", "no pg_dump of the server's version or newer"
    return pg_dump.parent


def _connection_args(db: dict) -> list[str]:
    args = ["--host", db["HOST"] or "127.0.0.1", "--port", str(db["PORT"] or 5432)]
    return args + (["--username", db["USER"]] if db["USER"] else [])


def _dsn(db: dict, name: str) -> str:
    return f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname={name}"


def school_setup(request_file: str) -> None:
    """Run in the source database (manage.py shell): a class of the signing tests' school with its
    scores (one saved through the service, audited), its record issued (signed with the key files
    the request names) and the PDF rendered into the documents store. Writes what the test checks
    as JSON beside the request."""
    import json

    from schools.models import Enrolment, Subject
    from schools.services import teaching_assignment_set
    from tests.signing.world import TEACHER_NAME
    from tests.transcripts.test_homeroom import fill_secondary
    from transcripts.models import SubjectTermScores, YearRecord
    from transcripts.records.pdf import year_record_pdf_render
    from transcripts.services import Cell, assessment_cell_save

    request = json.loads(Path(request_file).read_text())
    tag = request["tag"]
    school = signing_school()
    teacher = homeroom_teacher_for(school, tag)
    assert teacher.full_name == TEACHER_NAME
    secret = generate_totp_secret()
    TOTP.activate(teacher, secret)
    principal = User.objects.create_user(
        username=f"t-backup-ht-{tag}",
        password=PASSWORD,
        full_name=PRINCIPAL_NAME,
        email=f"ht-{tag}@test.local",
    )
    RoleAssignment.objects.create(user=principal, role=Role.PRINCIPAL, school=school)
    school_class = confirmed_class(school, teacher, tag=tag, size=1)
    with school:
        toan = Subject.objects.get(code="toan")
        teaching_assignment_set(school_class=school_class, subject=toan, teacher=teacher)
        fill_secondary(school_class, "7.0")
        enrolment = Enrolment.objects.get(school_class=school_class)
        cell = Cell(enrolment_id=enrolment.pk, subject_id=toan.pk, field="mid", term=1)
        assessment_cell_save(
            actor=teacher, school=school, school_class=school_class, cell=cell, raw=SCORE, expected="7.0"
        )
        assert SubjectTermScores.objects.get(enrolment=enrolment, subject=toan, term=1).mid == Decimal(SCORE)
        record = YearRecord.objects.get(enrolment=enrolment)
    keys = {key: Path(path).read_bytes() for key, path in request["keys"].items()}
    record = issue(record, homeroom_teacher=teacher, principal=principal, school=school, keys=keys)
    with school:
        pdf = year_record_pdf_render(record_id=record.pk)
    connection.set_schema_to_public()
    audit = sorted(AuditEntry.objects.filter(actor__in=[teacher, principal]).values_list("pk", "action"))
    Path(request["out"]).write_text(
        json.dumps(
            {
                "school_code": school.code,
                "schema": school.schema_name,
                "username": teacher.username,
                "full_name": teacher.full_name,
                "totp_secret": secret,
                "class_pk": school_class.pk,
                "enrolment_pk": enrolment.pk,
                "record_pk": record.pk,
                "pdf_sha256": pdf.sha256,
                "audit": audit,
            }
        )
    )


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"manage.py {args[0]}: {done.stdout}{done.stderr}"


@pytest.fixture
def committed_school(django_db_setup, django_db_blocker, signing_trust, tmp_path):
    """The province of the test database copied into a source database of this test (an issued
    record, its outbox message and its index row are no other test's business: they count them
    province-wide), and the school's data made there by a manage.py process; the source database
    dropped after. Yields (the source database, its documents directory, what school_setup wrote)."""
    import json

    from tests.signing.world import SCHOOL_NAME, TEACHER_NAME
    from tests.signing_kit import TITLES

    db = connection.settings_dict
    with django_db_blocker.unblock():
        bin_dir = client_tools()
    tag = uuid.uuid4().hex[:6]
    source = f"{db['NAME']}_backup_{tag}"
    copy = tmp_path / "test-database.dump"
    _run(bin_dir / "pg_dump", *_connection_args(db), "--format", "custom", "--file", copy, db["NAME"])
    _run(bin_dir / "createdb", *_connection_args(db), source)
    try:
        _run(bin_dir / "pg_restore", *_connection_args(db), "--jobs", "2", "--dbname", source, copy)
        keys = {
            "homeroom_teacher": signing_trust.person(TEACHER_NAME, TITLES["homeroom_teacher"]),
            "principal": signing_trust.person(PRINCIPAL_NAME, TITLES["principal"]),
            "seal": signing_trust.seal(SCHOOL_NAME),
        }
        for key, data in keys.items():
            (tmp_path / f"{key}.p12").write_bytes(data)
        request = tmp_path / "request.json"
        request.write_text(
            json.dumps(
                {
                    "tag": tag,
                    "keys": {key: str(tmp_path / f"{key}.p12") for key in keys},
                    "out": str(tmp_path / "school.json"),
                }
            )
        )
        documents = tmp_path / "documents-source"
        documents.mkdir()
        env = _portal_env(db, source, documents)
        _manage(
            env,
            "shell",
            "-c",
            f"from tests.ops.test_backup_restore import school_setup; school_setup({str(request)!r})",
        )
        yield source, documents, json.loads((tmp_path / "school.json").read_text())
    finally:
        _run(bin_dir / "dropdb", *_connection_args(db), "--force", "--if-exists", source)


def _portal_env(db: dict, name: str, documents: Path) -> dict[str, str]:
    """A portal process's environment on database `name` and that documents directory, with the
    session's signing trust and a cache of its own (nothing another database's processes cached
    is read)."""
    return dict(
        os.environ,
        DATABASE_URL=f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}",
        REDIS_URL=settings.REDIS_URL,
        HOCBA_CACHE_PREFIX=f"backup-{uuid.uuid4().hex[:8]}",
        HOCBA_DOCUMENTS_DIR=str(documents),
        HOCBA_TRUST_ROOTS=",".join(settings.HOCBA_TRUST_ROOTS),
        HOCBA_TRUST_CRLS=",".join(settings.HOCBA_TRUST_CRLS),
        HOCBA_CSC_URL="",
        # What the issue queues (the PDF, the relay) goes to queues no worker reads, dropped with
        # Redis's keys of this test.
        HOCBA_PDF_QUEUE=f"test-backup-{name}",
        HOCBA_FORWARD_QUEUE=f"test-backup-{name}",
        HOCBA_SIGNING_QUEUE=f"test-backup-{name}",
        DJANGO_DEBUG="1",
        HOCBA_TESTING="1",
        PYTHONUNBUFFERED="1",
    )


@pytest.fixture
def restored(committed_school, django_db_blocker, tmp_path):
    """The backup of the source database (pg_dump -Fc, and its documents directory copied)
    restored into a new database, and a portal process (runserver, as tests/e2e) on them. The
    process starts while pg_restore runs (it reads nothing before the first request). The new
    database is dropped after."""
    source, source_documents, world = committed_school
    db = connection.settings_dict
    with django_db_blocker.unblock():
        bin_dir = client_tools()
    new_name = f"{source}_restored"
    backup, school_backup = tmp_path / "province.dump", tmp_path / "school.dump"

    # The backup: the whole database, then one school's schema, and the documents.
    tools = [*_connection_args(db), "--format", "custom"]
    _run(bin_dir / "pg_dump", *tools, "--file", backup, source)
    _run(bin_dir / "pg_dump", *tools, "--schema", world["schema"], "--file", school_backup, source)
    documents = tmp_path / "documents"
    shutil.copytree(source_documents, documents)

    # The restore, into a new database.
    _run(bin_dir / "createdb", *_connection_args(db), new_name)
    env = _portal_env(db, new_name, documents)
    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _run(bin_dir / "pg_restore", *_connection_args(db), "--jobs", "2", "--dbname", new_name, backup)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.2)
        yield Restored(f"http://127.0.0.1:{port}", env, log, new_name, school_backup, bin_dir)
    finally:
        server.terminate()
        server.wait(10)
        _run(bin_dir / "dropdb", *_connection_args(db), "--force", new_name)
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        client.delete(f"test-backup-{source}", f"test-backup-{new_name}")
        client.close()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def login(client: httpx.Client, username: str, totp_secret: str) -> None:
    """The login form, then the TOTP form, as a browser posts them."""
    form = client.get("/accounts/login/")
    answer = client.post(
        "/accounts/login/",
        data={"login": username, "password": PASSWORD, "csrfmiddlewaretoken": _csrf(form.text)},
    )
    assert answer.status_code == 302 and answer.headers["location"].endswith("/accounts/2fa/authenticate/")
    form = client.get("/accounts/2fa/authenticate/")
    code = format_hotp_value(hotp_value(totp_secret, int(time.time()) // 30))
    answer = client.post(
        "/accounts/2fa/authenticate/", data={"code": code, "csrfmiddlewaretoken": _csrf(form.text)}
    )
    assert answer.status_code == 302, answer.text[:500]


def _scores_shown(page: str) -> list[str]:
    return re.findall(r'value="(\d+,\d)"', page)


@pytest.mark.slow
def test_a_backup_restored_into_a_new_database_opens_the_school(committed_school, restored):
    source, _documents, world = committed_school
    url, env, log, new_name = restored.url, restored.env, restored.log, restored.database
    db = connection.settings_dict
    code, schema = world["school_code"], world["schema"]
    book = f"/truong/{code}/so-diem/{world['class_pk']}/toan/"
    pdf_url = f"/truong/{code}/so-diem/ho-so/{world['record_pk']}/pdf/"
    audit = [tuple(row) for row in world["audit"]]

    with httpx.Client(base_url=url, timeout=30) as client:
        login(client, world["username"], world["totp_secret"])
        page = client.get(book)
        assert page.status_code == 200, log.read_text(errors="replace")
        scores = _scores_shown(page.text)
        assert SHOWN in scores and scores.count("7,0") >= 3, scores
        # The cell's history (the school's own audit of scores): who changed it, from what to what.
        history = client.get(
            f"{book}lich-su/", params={"enrolment": world["enrolment_pk"], "field": "mid", "term": "1"}
        )
        assert history.status_code == 200 and world["full_name"] in history.text
        assert re.search(r"<td>7,0</td><td>9,3</td>", history.text), history.text

        download = client.get(pdf_url)
        assert download.status_code == 200 and download.headers["content-type"] == "application/pdf"
        assert hashlib.sha256(download.content).hexdigest() == world["pdf_sha256"]

        # The audit rows, chained as they were (the score, the confirmation, the signatures).
        query = "SELECT id, action, chain_hash FROM portal_auditentry WHERE id = ANY(%s) ORDER BY id"
        ids = [pk for pk, _action in audit]
        with psycopg.connect(_dsn(db, source)) as before_db, psycopg.connect(_dsn(db, new_name)) as copy:
            before, after = before_db.execute(query, [ids]).fetchall(), copy.execute(query, [ids]).fetchall()
        assert [(pk, action) for pk, action, _hash in after] == audit and after == before
        assert "year_record_signed" in {action for _pk, action in audit}, audit

        # One school lost in the new database (its schema dropped), restored from its own dump.
        with psycopg.connect(_dsn(db, new_name), autocommit=True) as restored_db:
            restored_db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        _run(
            restored.bin_dir / "pg_restore",
            *_connection_args(db),
            "--dbname",
            new_name,
            restored.school_backup,
        )
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate_schemas", "--schema", schema],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        # The session lives in the public schema: the teacher is still logged in.
        page = client.get(book)
        assert page.status_code == 200 and SHOWN in _scores_shown(page.text)
        download = client.get(pdf_url)
        assert hashlib.sha256(download.content).hexdigest() == world["pdf_sha256"]
