"""What the closing season's browser test (tests/e2e/test_season.py) needs besides the browser.

- `season_database`: a database of the season's own, migrated, and in it (`season_setup`) a fresh
  small school (a primary school in a division of its own, one grade 5 class of five pupils, two
  subjects), its staff, their key files and authenticator apps. Data set-up only: every score,
  approval and signature of the season is made in the browser by the test.
- `season_records`: the class's year records, read from that database.
- `Codes`: authenticator codes as a person reads them from the app: never one about to expire,
  never the same code twice for one person (the portal refuses a replayed code).
- `log_in`: the login form, with the second factor when the account has one.
- `Gallery`: the full-page screenshots of the steps and an index.html with their captions
  (Vietnamese, English), in .data/e2e/season/ (HOCBA_SCREENSHOT_DIR overrides).
- `qr_links`: the URLs the QR codes of a PDF encode (pdftoppm renders it, zbarimg reads them).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import html
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.db import connection

from portal.choices import DivisionKind, Role, SchoolLevel
from portal.models import Department, Division, RoleAssignment, User
from portal.provisioning import SchoolSpec, school_provision
from tests.conftest import PASSWORD, student_make
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.signing_kit import PIN

YEAR = "2025-2026"
SUBJECTS = ("tieng_viet", "toan")  # the grade's curriculum, cut to two subjects to stay fast
PUPILS = [
    ("Đào Minh Anh", 2),
    ("Lương Gia Bảo", 1),
    ("Hà Khánh Chi", 2),
    ("Tạ Đức Duy", 1),
    ("Kiều Ngọc Hân", 2),
]
# who: (full name, role, signs: a key file and an authenticator app)
STAFF = {
    "subject_teacher": ("Cao Bộ Môn Mùa", Role.SUBJECT_TEACHER),
    "homeroom_teacher": ("Triệu Chủ Nhiệm Mùa", Role.HOMEROOM_TEACHER),
    "principal": ("Âu Hiệu Trưởng Mùa", Role.PRINCIPAL),
    "clerk": ("Mạc Văn Thư Mùa", Role.SCHOOL_ADMIN),
}
TITLES = {"homeroom_teacher": "Giáo viên chủ nhiệm", "principal": "Hiệu trưởng"}


@dataclass
class Person:
    username: str
    full_name: str


@dataclass
class SeasonWorld:
    """What the browser needs to know of the season's school (plain data: it lives in the season's
    own database, which the test process does not open through the ORM)."""

    school_code: str
    school_name: str
    schema_name: str
    division_code: str
    class_pk: int
    class_name: str
    users: dict[str, Person]
    secrets: dict[str, str]  # who logs in with a second factor: their TOTP secret

    @property
    def book(self) -> str:
        return f"/truong/{self.school_code}/so-diem"


def school_name(tag: str) -> str:
    return f"Trường Tiểu học Mùa Thi {tag.upper()}"


def key_files(signing_trust, folder: Path, tag: str) -> dict[str, str]:
    """The signers' PKCS#12 files (PIN tests.signing_kit.PIN) from the session's test CA."""
    made = {
        **{key: signing_trust.person(STAFF[key][0], title) for key, title in TITLES.items()},
        "seal": signing_trust.seal(school_name(tag)),
    }
    paths = {}
    for key, data in made.items():
        paths[key] = str(folder / f"{key}.p12")
        Path(paths[key]).write_bytes(data)
    return paths


def season_setup(request_file: str) -> None:
    """Run in the season's database (manage.py shell): the department if none yet, a division and
    a primary school of their own, the staff (their key files registered, authenticator apps for
    those who sign), one grade 5 class of five pupils in two subjects. Writes the SeasonWorld as
    JSON beside the request."""
    from schools.models import CurriculumEntry, Subject
    from schools.services import class_create, school_year_open, student_enrol, teaching_assignment_set
    from signing.services import certificate_register_pkcs12

    request = json.loads(Path(request_file).read_text())
    tag, keys = request["tag"], request["keys"]
    connection.set_schema_to_public()
    if not Department.objects.exists():
        Department.objects.create(
            code="T0", name="Sở Giáo dục và Đào tạo Thử Nghiệm", place_name="Thử Nghiệm"
        )
    division = Division.objects.create(
        code=f"t-mua-{tag}", name=f"UBND Phường Mùa Thi {tag}", kind=DivisionKind.COMMUNE
    )
    school, _ = school_provision(
        actor=None,
        spec=SchoolSpec(
            code=f"t-mua-{tag}",
            name=school_name(tag),
            levels=(SchoolLevel.PRIMARY,),
            division_code=division.code,
        ),
        division=division,
    )
    users: dict[str, User] = {}
    for key, (full_name, role) in STAFF.items():
        user = users[key] = User.objects.create_user(
            username=f"mua-{key.replace('_', '-')}-{tag}",
            password=PASSWORD,
            full_name=full_name,
            email=f"mua-{key}-{tag}@test.local",
        )
        RoleAssignment.objects.create(user=user, role=role, school=school)
    officer = users["division_officer"] = User.objects.create_user(
        username=f"mua-phong-{tag}",
        password=PASSWORD,
        full_name="Dương Chuyên Viên Mùa",
        email=f"mua-phong-{tag}@test.local",
    )
    RoleAssignment.objects.create(user=officer, role=Role.DIVISION_OFFICER, division=division)
    secrets = {}
    for key in ("homeroom_teacher", "principal", "clerk"):  # they sign: a second factor at login
        secrets[key] = generate_totp_secret()
        TOTP.activate(users[key], secrets[key])
    for key in TITLES:
        certificate_register_pkcs12(
            actor=users[key], user=users[key], data=Path(keys[key]).read_bytes(), pin=PIN
        )
    certificate_register_pkcs12(
        actor=users["clerk"], school=school, data=Path(keys["seal"]).read_bytes(), pin=PIN
    )

    with school:
        year = school_year_open(
            code=YEAR, starts_on=dt.date(2025, 9, 5), ends_on=dt.date(2026, 5, 31), levels=list(school.levels)
        )
        CurriculumEntry.objects.filter(school_year=year, grade=5).exclude(subject__code__in=SUBJECTS).delete()
        school_class = class_create(
            school_year=year,
            name="5A",
            grade=5,
            levels=school.levels,
            homeroom_teacher=users["homeroom_teacher"],
        )
        for code in SUBJECTS:
            teaching_assignment_set(
                school_class=school_class,
                subject=Subject.objects.get(code=code),
                teacher=users["subject_teacher"],
            )
        for number, (name, sex) in enumerate(PUPILS, start=1):
            pupil = student_make(f"M{tag}{number:02d}", name, sex, dt.date(2015, 2, number))
            student_enrol(student=pupil, school_class=school_class, enrolled_on=year.starts_on, number=number)
    connection.set_schema_to_public()
    world = SeasonWorld(
        school_code=school.code,
        school_name=school.name,
        schema_name=school.schema_name,
        division_code=division.code,
        class_pk=school_class.pk,
        class_name=school_class.name,
        users={key: Person(u.username, u.full_name) for key, u in users.items()},
        secrets=secrets,
    )
    Path(request["out"]).write_text(json.dumps(dataclasses.asdict(world)))


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextlib.contextmanager
def season_database(django_db_blocker, signing_trust, folder: Path, env: dict[str, str]):
    """A database of the season's own beside the test database (its issued records, index rows,
    outbox messages and audit rows are no other test's business), migrated, the world set up in
    it; yields (its URL, the SeasonWorld); dropped at the end. `env`: the trust settings and the
    deployment key the server and the worker get too."""
    from django.db import connection as test_connection

    from tests.worker import database_url

    tag = uuid.uuid4().hex[:6]
    name = f"{test_connection.settings_dict['NAME']}_season"
    with django_db_blocker.unblock(), test_connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = database_url().rsplit("/", 1)
    url = f"{url[0]}/{name}" + (f"?{url[1].split('?', 1)[1]}" if "?" in url[1] else "")
    manage_env = {**os.environ, **env, "DATABASE_URL": url, "HOCBA_TESTING": "1", "PYTHONUNBUFFERED": "1"}
    try:
        _manage(manage_env, "migrate_schemas", "--noinput", "-v", "0")
        request = folder / "season-request.json"
        request.write_text(
            json.dumps(
                {"tag": tag, "keys": key_files(signing_trust, folder, tag), "out": str(folder / "world.json")}
            )
        )
        _manage(
            manage_env,
            "shell",
            "-c",
            f"from tests.e2e.season_kit import season_setup; season_setup({str(request)!r})",
        )
        data = json.loads((folder / "world.json").read_text())
        data["users"] = {key: Person(**person) for key, person in data["users"].items()}
        yield url, SeasonWorld(**data)
    finally:
        with django_db_blocker.unblock(), test_connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def season_records(url: str, world: SeasonWorld) -> list[dict]:
    """The class's year records as the season's database holds them (plain SQL: a read)."""
    import psycopg
    from psycopg import sql

    query = sql.SQL(
        """SELECT r.id, r.record_id, r.version, r.status, s.full_name
             FROM {schema}.transcripts_yearrecord r
             JOIN {schema}.schools_enrolment e ON e.id = r.enrolment_id
             JOIN {schema}.schools_student s ON s.id = e.student_id
            WHERE e.school_class_id = %s ORDER BY e.number"""
    ).format(schema=sql.Identifier(world.schema_name))
    with psycopg.connect(url) as conn:
        rows = conn.execute(query, [world.class_pk]).fetchall()
    names = ("pk", "record_id", "version", "status", "full_name")
    return [dict(zip(names, row, strict=True)) for row in rows]


class Codes:
    """Authenticator codes: one per person and 30 s window (a replayed code is refused), and never
    in a window's last seconds (it could expire between the typing and the server's check)."""

    def __init__(self) -> None:
        self.used: dict[str, set[int]] = {}

    def next(self, secret: str) -> str:
        used = self.used.setdefault(secret, set())
        while True:
            now = time.time()
            window = int(now) // 30
            if now % 30 <= 20 and window not in used:  # 10 s to type and send it, even loaded
                used.add(window)
                return format_hotp_value(hotp_value(secret, window))
            time.sleep(30 - now % 30 + 0.3)


def log_in(page, url: str, user: Person, *, codes: Codes, secret: str | None = None) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=login]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    if secret is not None:
        page.wait_for_url(f"{url}/accounts/2fa/authenticate/")
        page.fill("input[name=code]", codes.next(secret))
        page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    assert user.full_name in page.locator("header").inner_text()


def trusting_chromium(browser, server_cert: Path):
    """Debian's chromium again, on the running Playwright, trusting one server certificate (its
    public key), as a browser trusts a province's real certificate: with ignore_https_errors
    instead, chromium refuses what needs a secure origin, such as the grade book's service worker."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(server_cert.read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"]
    )


def screenshot_dir() -> Path:
    return Path(os.environ.get("HOCBA_SCREENSHOT_DIR") or ROOT / ".data" / "e2e" / "season")


class Gallery:
    """Full-page screenshots numbered in order, and an index.html with their captions."""

    def __init__(self, directory: Path, title: tuple[str, str]):
        self.directory = directory
        self.title = title
        self.shots: list[tuple[str, str, str]] = []  # file, Vietnamese caption, English caption
        self.started = time.monotonic()
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.png"):
            old.unlink()

    def shot(self, page, slug: str, vi: str, en: str) -> Path:
        name = f"{len(self.shots) + 1:02d}-{slug}.png"
        path = self.directory / name
        page.screenshot(path=str(path), full_page=True)
        self.shots.append((name, vi, en))
        print(f"{name} at {time.monotonic() - self.started:.1f} s")
        self._index()
        return path

    def _index(self) -> None:
        vi, en = (html.escape(t) for t in self.title)
        items = "\n".join(
            f'<figure><img src="{html.escape(name)}" alt="{html.escape(cap_vi)}" loading="lazy">'
            f"<figcaption><strong>{n}. {html.escape(cap_vi)}</strong><br><em>{html.escape(cap_en)}</em>"
            f"</figcaption></figure>"
            for n, (name, cap_vi, cap_en) in enumerate(self.shots, start=1)
        )
        (self.directory / "index.html").write_text(
            f'<!doctype html>\n<html lang="vi"><head><meta charset="utf-8"><title>{vi}</title>\n'
            "<style>body{font-family:sans-serif;max-width:1320px;margin:1em auto}"
            "figure{margin:2em 0}img{max-width:100%;border:1px solid #ccc}</style></head>\n"
            f"<body><h1>{vi}</h1><p><em>{en}</em></p>\n{items}\n</body></html>\n",
            encoding="utf-8",
        )


def qr_links(pdf: bytes) -> list[str]:
    """What the QR codes on the PDF's first page say, read from its rendering as a person's phone
    would read the printed page (poppler's pdftoppm, zbarimg: tests/transcripts' helpers)."""
    from tests.transcripts.test_pdf import poppler
    from tests.transcripts.test_record_pdf import zbarimg

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "record.pdf"
        source.write_bytes(pdf)
        poppler(
            "pdftoppm",
            "-r",
            "200",
            "-f",
            "1",
            "-l",
            "1",
            "-png",
            "-singlefile",
            source,
            Path(folder) / "page",
        )
        return [line for line in zbarimg(Path(folder) / "page.png") if line.strip()]
