"""Shared fixtures: one test province, built once per session, and the personas that use it.

The schools are provisioned once (cloning a schema costs ~0.1 s); every test then runs in a
transaction that is rolled back, so grants, revocations and edits made by a test disappear.
With --reuse-db the province is kept between runs and found again by code.
"""

from __future__ import annotations

import datetime as dt
import zlib

import pytest
from django.db import connection

from portal.choices import DivisionKind, Role, SchoolLevel
from portal.models import Department, Division, RoleAssignment, School, User
from portal.provisioning import SchoolSpec, school_provision

PASSWORD = "test-password-2026"

SCHOOLS = {
    "school": (
        "t-th-a",
        "Trường Tiểu học và THCS Thử Nghiệm A",
        (SchoolLevel.PRIMARY, SchoolLevel.LOWER_SECONDARY),
        "t-div-a",
    ),
    "other_school": ("t-thcs-b", "Trường THCS Thử Nghiệm B", (SchoolLevel.LOWER_SECONDARY,), "t-div-b"),
    "direct_school": ("t-thpt-c", "Trường THPT Thử Nghiệm C", (SchoolLevel.UPPER_SECONDARY,), ""),
}

# persona: (full name, role, scope key, is_manager, data_access)
PERSONAS = {
    "department_admin": ("Nguyễn Quản Trị", Role.DEPARTMENT_ADMIN, "", False, False),
    "department_officer": ("Trần Chuyên Viên", Role.DEPARTMENT_OFFICER, "", False, True),
    "division_manager": ("Lê Trưởng Phòng", Role.DIVISION_OFFICER, "t-div-a", True, False),
    "division_officer": ("Phạm Chuyên Viên", Role.DIVISION_OFFICER, "t-div-a", False, False),
    "other_division_officer": ("Hoàng Cán Bộ", Role.DIVISION_OFFICER, "t-div-b", True, False),
    "school_admin": ("Vũ Giáo Vụ", Role.SCHOOL_ADMIN, "school", False, False),
    "principal": ("Đặng Hiệu Trưởng", Role.PRINCIPAL, "school", False, False),
    "vice_principal": ("Bùi Phó Hiệu Trưởng", Role.VICE_PRINCIPAL, "school", False, False),
    "homeroom_teacher": ("Ngô Chủ Nhiệm", Role.HOMEROOM_TEACHER, "school", False, False),
    "subject_teacher": ("Đỗ Bộ Môn", Role.SUBJECT_TEACHER, "school", False, False),
    "other_school_admin": ("Lý Giáo Vụ", Role.SCHOOL_ADMIN, "other_school", False, False),
    "teacher_of_another_school": ("Hồ Giáo Viên", Role.SUBJECT_TEACHER, "other_school", False, False),
    "colleague": ("Mai Đồng Nghiệp", Role.SUBJECT_TEACHER, "school", False, False),
}

# The test school's book: a grade 5 class (TT27) and a grade 8 class (TT22).
STUDENTS = [
    ("Nguyễn Văn An", 1),
    ("Trần Thị Bình", 2),
    ("Lê Minh Châu", 2),
    ("Phạm Quốc Dũng", 1),
]


def _build_province() -> None:
    connection.set_schema_to_public()
    if Department.objects.filter(code="T0").exists():
        return
    Department.objects.create(code="T0", name="Sở Giáo dục và Đào tạo Thử Nghiệm", place_name="Thử Nghiệm")
    divisions = {
        "t-div-a": Division.objects.create(
            code="t-div-a", name="Phòng GD&ĐT Huyện A", kind=DivisionKind.DISTRICT_OFFICE
        ),
        "t-div-b": Division.objects.create(code="t-div-b", name="UBND Phường B", kind=DivisionKind.COMMUNE),
    }
    schools = {}
    for key, (code, name, levels, division_code) in SCHOOLS.items():
        schools[key], _ = school_provision(
            actor=None,
            spec=SchoolSpec(code=code, name=name, levels=levels, division_code=division_code),
            division=divisions.get(division_code),
        )
    users = {}
    for username, (full_name, role, scope, is_manager, data_access) in PERSONAS.items():
        user = users[username] = User.objects.create_user(
            username=username, password=PASSWORD, full_name=full_name, email=f"{username}@test.local"
        )
        RoleAssignment.objects.create(
            user=user,
            role=role,
            division=divisions.get(scope),
            school=schools.get(scope),
            is_manager=is_manager,
            data_access=data_access,
        )
    with schools["school"]:
        _build_school_book(schools["school"], users)


def student_make(code: str, full_name: str, sex: int, born: dt.date, *, personal_id: bool = True):
    """A student with a personal ID that agrees with their birth year and sex (province 010)."""
    from schools.models import Student

    century_sex = (born.year // 100 - 19) * 2 + (1 if sex == 2 else 0)
    pid = (
        f"010{century_sex}{born.year % 100:02d}{zlib.crc32(code.encode()) % 1_000_000:06d}"
        if personal_id
        else None
    )
    return Student.objects.create(
        student_code=code,
        personal_id=pid,
        temporary_code="" if personal_id else f"TAM-{code}",
        full_name=full_name,
        sex=sex,
        date_of_birth=born,
    )


def _build_school_book(school: School, users: dict[str, User]) -> None:
    from schools.models import Subject
    from schools.services import class_create, school_year_open, student_enrol, teaching_assignment_set

    year = school_year_open(
        code="2025-2026",
        starts_on=dt.date(2025, 9, 5),
        ends_on=dt.date(2026, 5, 31),
        levels=list(school.levels),
    )
    primary = class_create(
        school_year=year, name="5A", grade=5, levels=school.levels, homeroom_teacher=users["homeroom_teacher"]
    )
    secondary = class_create(
        school_year=year, name="8A", grade=8, levels=school.levels, homeroom_teacher=users["homeroom_teacher"]
    )
    subjects = {s.code: s for s in Subject.objects.all()}
    teaching_assignment_set(
        school_class=primary, subject=subjects["ngoai_ngu_1"], teacher=users["subject_teacher"]
    )
    teaching_assignment_set(
        school_class=secondary, subject=subjects["toan"], teacher=users["subject_teacher"]
    )
    teaching_assignment_set(school_class=secondary, subject=subjects["ngu_van"], teacher=users["colleague"])
    for number, (name, sex) in enumerate(STUDENTS, start=1):
        pupil = student_make(f"TH{number:03d}", name, sex, dt.date(2015, 3, number))
        student_enrol(student=pupil, school_class=primary, enrolled_on=year.starts_on, number=number)
        learner = student_make(f"CS{number:03d}", name + " Hai", sex, dt.date(2012, 4, number))
        student_enrol(student=learner, school_class=secondary, enrolled_on=year.starts_on, number=number)


@pytest.fixture(scope="session")
def django_db_setup(
    request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_createdb
):
    """pytest-django's set-up, for the default database whatever the selected tests ask for.

    (Its own fixture sets up only the databases that the selected tests mark; the browser tests
    use the database through a server process and mark none.) Then the test province is built.
    """
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=request.config.option.verbose, interactive=False, aliases={"default"}, keepdb=keepdb
        )
        _build_province()
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=request.config.option.verbose)


@pytest.fixture(autouse=True)
def _public_schema_after_each_test():
    yield
    connection.set_schema_to_public()


def _school(key: str) -> School:
    return School.objects.select_related("division").get(code=SCHOOLS[key][0])


@pytest.fixture
def school(db) -> School:
    return _school("school")


@pytest.fixture
def other_school(db) -> School:
    return _school("other_school")


@pytest.fixture
def direct_school(db) -> School:
    return _school("direct_school")


@pytest.fixture
def division_a(db) -> Division:
    return Division.objects.get(code="t-div-a")


@pytest.fixture
def division_b(db) -> Division:
    return Division.objects.get(code="t-div-b")


def _persona(name: str):
    @pytest.fixture(name=name)
    def fixture(db) -> User:
        return User.objects.get(username=name)

    return fixture


for _name in PERSONAS:
    globals()[f"_persona_{_name}"] = _persona(_name)


@pytest.fixture
def persona(db):
    """persona("principal") -> that user, for parametrised tests."""
    return lambda name: User.objects.get(username=name)


@pytest.fixture
def client_as(client):
    """client_as(user) -> the test client, logged in as that user (second factor included)."""

    def login(user: User):
        client.force_login(user)
        _mark_two_factor_done(client, user)
        return client

    return login


def _mark_two_factor_done(client, user: User) -> None:
    """Give 2FA-bound users a TOTP authenticator, so the enrolment redirect does not apply."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from portal.permissions import requires_two_factor

    if requires_two_factor(user) and not Authenticator.objects.filter(user=user, type="totp").exists():
        TOTP.activate(user, generate_totp_secret())


@pytest.fixture
def in_school(school):
    """Run the test body in the test school's schema."""
    connection.set_tenant(school)
    yield school
    connection.set_schema_to_public()


@pytest.fixture
def primary_class(in_school):
    from schools.models import SchoolClass

    return SchoolClass.objects.get(name="5A")


@pytest.fixture
def secondary_class(in_school):
    from schools.models import SchoolClass

    return SchoolClass.objects.get(name="8A")


# --- Signing: a development CA pinned as the trust store for the whole session ----------------

SIGNING_PIN = "135790"


@pytest.fixture(scope="session", autouse=True)
def signing_trust(tmp_path_factory):
    """A development CA, its CRL (revoking nothing yet) and the portal's trust settings on it,
    whatever the environment says (`make test` runs with `make run`'s signing settings).

    `signing_trust.revoke(cert)` publishes a new CRL that revokes it (tests/signing_kit.py).
    """
    from django.conf import settings

    from tests.signing_kit import TrustFixture

    trust = TrustFixture(tmp_path_factory.mktemp("trust"))
    saved = (settings.HOCBA_TRUST_ROOTS, settings.HOCBA_TRUST_CRLS, settings.HOCBA_CSC_URL)
    settings.HOCBA_TRUST_ROOTS, settings.HOCBA_TRUST_CRLS = [str(trust.roots_file)], [str(trust.crl_file)]
    # No remote-signing service unless a test starts one (`make test` runs beside `make run`'s).
    settings.HOCBA_CSC_URL = ""
    trust.reset()
    yield trust
    settings.HOCBA_TRUST_ROOTS, settings.HOCBA_TRUST_CRLS, settings.HOCBA_CSC_URL = saved
    trust.reset()


@pytest.fixture(scope="session")
def tsa_service(tmp_path_factory):
    """The reference timestamping service (python -m reference.tsa serve), one for the session."""
    from tests.reference.tsa import TsaService

    service = TsaService(tmp_path_factory.mktemp("tsa"))
    yield service
    service.stop()


@pytest.fixture
def timestamping(tsa_service, settings):
    """The portal's TSA settings pointed at the reference service (its roots trusted for
    timestamps, its CRL read), the trust and timestamp caches reset before and after."""
    from signing.timestamps import timestamper_reset
    from signing.trust import trust_reset

    settings.HOCBA_TSA_URL = tsa_service.url
    settings.HOCBA_TSA_TRUST_ROOTS = [str(tsa_service.roots_file)]
    settings.HOCBA_TRUST_CRLS = [*settings.HOCBA_TRUST_CRLS, tsa_service.crl_url]
    trust_reset()
    timestamper_reset()
    yield tsa_service
    trust_reset()
    timestamper_reset()


@pytest.fixture
def signing_keys(signing_trust, school):
    """PKCS#12 files (PIN SIGNING_PIN) of the test school's signers, issued by the test CA."""
    return signing_trust.school_keys(school)


@pytest.fixture
def certificates(signing_keys, homeroom_teacher, principal, vice_principal, school_admin, school):
    """The signers' certificates registered: homeroom teacher, principal, vice-principal, seal."""
    from signing.services import certificate_register_pkcs12

    return {
        "homeroom_teacher": certificate_register_pkcs12(
            actor=homeroom_teacher,
            user=homeroom_teacher,
            data=signing_keys["homeroom_teacher"],
            pin=SIGNING_PIN,
        ),
        "principal": certificate_register_pkcs12(
            actor=principal, user=principal, data=signing_keys["principal"], pin=SIGNING_PIN
        ),
        "vice_principal": certificate_register_pkcs12(
            actor=vice_principal, user=vice_principal, data=signing_keys["vice_principal"], pin=SIGNING_PIN
        ),
        "seal": certificate_register_pkcs12(
            actor=school_admin, school=school, data=signing_keys["seal"], pin=SIGNING_PIN
        ),
    }


# --- Counters kept in Redis across requests -----------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_address_counters():
    """Every test comes from 127.0.0.1, so the per-address counters (verification rate limits,
    wrong verification codes, login lock-outs) would add up across the whole run and refuse a
    later test for an earlier one's requests: each test starts with none of its own run's."""
    from django.core.cache import cache

    client = cache._cache.get_client()  # django's RedisCache: the redis-py client
    prefix = cache.make_key("")
    stale = [
        key
        for pattern in ("verify-rate:*", "verify-wrong-code:*", "login-lock:*")
        for key in client.scan_iter(match=f"{prefix}{pattern}", count=1000)
    ]
    if stale:
        client.delete(*stale)
    yield


@pytest.fixture(scope="session", autouse=True)
def softhsm_session_dir(tmp_path_factory):
    """SoftHSM2's token directory for this test process, configured before anything loads the
    library: it reads SOFTHSM2_CONF once per process, so a page test that touches a seal token
    first (the hostile-input walk does) would otherwise pin the process to the default
    directory, whose tokens outlive the run. tests/signing/conftest.py's softhsm_dir hands it on."""
    from signing.softhsm import softhsm_configure

    directory = tmp_path_factory.mktemp("softhsm")
    softhsm_configure(directory)
    return directory


@pytest.fixture(scope="session")
def playwright_driver():
    """The test session's one Playwright (sync API), shared by every browser test (tests/e2e,
    tests/production): its event loop runs in this thread, so a second sync_playwright() in the same
    run is refused ("Sync API inside the asyncio loop")."""
    import os

    from playwright.sync_api import sync_playwright

    # That loop makes Django refuse ORM calls made by the tests' own fixtures, although nothing
    # async touches them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as driver:
        yield driver
