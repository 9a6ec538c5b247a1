"""Shared fixtures: one test province, built once per session, and the personas that use it.

The schools are provisioned once (cloning a schema costs ~0.1 s); every test then runs in a
transaction that is rolled back, so grants, revocations and edits made by a test disappear.
With --reuse-db the province is kept between runs and found again by code.
"""

from __future__ import annotations

import pytest
from django.db import connection

from portal.choices import DivisionKind, Role, SchoolLevel
from portal.models import Department, Division, RoleAssignment, School, User
from portal.provisioning import SchoolSpec, school_provision

PASSWORD = "test-password-2026"

SCHOOLS = {
    "school": ("t-th-a", "Trường Tiểu học Thử Nghiệm A", (SchoolLevel.PRIMARY,), "t-div-a"),
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
}


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
    for username, (full_name, role, scope, is_manager, data_access) in PERSONAS.items():
        user = User.objects.create_user(
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


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        _build_province()


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
