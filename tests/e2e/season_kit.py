"""What the closing season's browser test (tests/e2e/test_season.py) needs besides the browser.

- `season_world`: a fresh small school of its own (a primary school in a division of its own, one
  grade 5 class of five pupils, two subjects), its staff, their key files and authenticator apps,
  committed for the other processes. Data set-up only: every score, approval and signature of
  the season is made in the browser by the test.
- `Codes`: authenticator codes as a person reads them from the app: never one about to expire,
  never the same code twice for one person (the portal refuses a replayed code).
- `log_in`: the login form, with the second factor when the account has one.
- `Gallery`: the full-page screenshots of the steps and an index.html with their captions
  (Vietnamese, English), in .data/e2e/season/ (HOCBA_SCREENSHOT_DIR overrides).
- `qr_links`: the URLs the QR codes of a PDF encode (pdftoppm renders it, zbarimg reads them).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.db import connection

from portal.choices import DivisionKind, Role, SchoolLevel
from portal.models import Division, RoleAssignment, School, User
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
class SeasonWorld:
    school: School
    division: Division
    class_pk: int
    class_name: str
    users: dict[str, User]
    secrets: dict[str, str]  # username key: TOTP secret (those who log in with a second factor)
    record_ids: list[str] = field(default_factory=list)

    @property
    def book(self) -> str:
        return f"/truong/{self.school.code}/so-diem"


def season_world(signing_trust, tag: str) -> SeasonWorld:
    """Provision the season's school and its people (committed; call with the db unblocked)."""
    from schools.models import CurriculumEntry, Subject
    from schools.services import class_create, school_year_open, student_enrol, teaching_assignment_set
    from signing.services import certificate_register_pkcs12

    connection.set_schema_to_public()
    division = Division.objects.create(
        code=f"t-mua-{tag}", name=f"UBND Phường Mùa Thi {tag}", kind=DivisionKind.COMMUNE
    )
    school, _ = school_provision(
        actor=None,
        spec=SchoolSpec(
            code=f"t-mua-{tag}",
            name=f"Trường Tiểu học Mùa Thi {tag.upper()}",
            levels=(SchoolLevel.PRIMARY,),
            division_code=division.code,
        ),
        division=division,
    )
    users: dict[str, User] = {}
    secrets: dict[str, str] = {}
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
    for key in ("homeroom_teacher", "principal", "clerk"):  # they sign: a second factor at login
        secrets[key] = generate_totp_secret()
        TOTP.activate(users[key], secrets[key])
    for key, title in TITLES.items():
        certificate_register_pkcs12(
            actor=users[key], user=users[key], data=signing_trust.person(users[key].full_name, title), pin=PIN
        )
    certificate_register_pkcs12(
        actor=users["clerk"], school=school, data=signing_trust.seal(school.name), pin=PIN
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
    return SeasonWorld(
        school=school,
        division=division,
        class_pk=school_class.pk,
        class_name=school_class.name,
        users=users,
        secrets=secrets,
    )


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
            if now % 30 <= 24 and window not in used:
                used.add(window)
                return format_hotp_value(hotp_value(secret, window))
            time.sleep(30 - now % 30 + 0.3)


def log_in(page, url: str, user: User, *, codes: Codes, secret: str | None = None) -> None:
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
