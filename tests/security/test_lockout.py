"""Issue 9, finding 6: wrong passwords lock the account, not the school behind its NAT.

Per account: five wrong passwords lock it for a while, longer each time; a successful login
forgets them. Per address: a ceiling high enough for a school's NAT. Operators unlock, audited.
Each test uses accounts and an address of its own (the counters live in Redis, not in the
test's transaction).
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.utils import timezone

from portal.choices import AuditAction, Role
from portal.lockout import login_locked_until
from portal.models import AuditEntry, RoleAssignment, User
from tests.conftest import PASSWORD

LOGIN = "/accounts/login/"
ACCOUNT_LOCKED = "Tài khoản này tạm bị khóa"
NETWORK_PAUSED = "từ mạng này"


@pytest.fixture
def address() -> str:
    """An address of this test's own (a school's NAT)."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture
def teacher_factory(school):
    def make() -> User:
        name = f"gv-khoa-{uuid.uuid4().hex[:8]}"
        user = User.objects.create_user(
            username=name, password=PASSWORD, full_name="Giáo Viên Thử", email=f"{name}@test.local"
        )
        RoleAssignment.objects.create(user=user, role=Role.SUBJECT_TEACHER, school=school)
        return user

    return make


def _login(client, login: str, password: str, address: str):
    client.logout()
    return client.post(LOGIN, {"login": login, "password": password}, REMOTE_ADDR=address)


def _wrong(client, user: User, address: str, times: int) -> None:
    for _ in range(times):
        response = _login(client, user.username, "sai-mat-khau", address)
        assert response.status_code == 200


def test_five_wrong_passwords_lock_the_account_and_say_when_to_retry_and_whom_to_ask(
    client, teacher_factory, address
):
    teacher = teacher_factory()
    _wrong(client, teacher, address, 5)
    response = _login(client, teacher.username, PASSWORD, address)  # the right password, too late
    assert response.status_code == 200
    page = response.content.decode()
    assert ACCOUNT_LOCKED in page
    assert "Hãy thử lại sau" in page and "khoảng 5 phút" in page
    assert "Sở Giáo dục" in page
    assert login_locked_until(teacher) is not None


def test_the_lock_follows_the_account_whatever_login_names_it(client, teacher_factory, address):
    teacher = teacher_factory()
    _wrong(client, teacher, address, 5)
    response = _login(client, teacher.email, PASSWORD, address)
    assert ACCOUNT_LOCKED in response.content.decode()


def test_a_locked_account_does_not_lock_its_colleagues_behind_the_same_address(
    client, teacher_factory, address
):
    mistyping, colleague = teacher_factory(), teacher_factory()
    _wrong(client, mistyping, address, 12)
    assert ACCOUNT_LOCKED in _login(client, mistyping.username, PASSWORD, address).content.decode()
    response = _login(client, colleague.username, PASSWORD, address)
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_successful_login_forgets_the_wrong_passwords_before_it(client, teacher_factory, address):
    teacher = teacher_factory()
    _wrong(client, teacher, address, 4)
    assert _login(client, teacher.username, PASSWORD, address).status_code == 302
    _wrong(client, teacher, address, 4)
    assert _login(client, teacher.username, PASSWORD, address).status_code == 302
    assert login_locked_until(teacher) is None


def test_each_further_lock_lasts_twice_as_long(client, teacher_factory, address, settings):
    settings.HOCBA_LOGIN_LOCK_SECONDS = 1
    teacher = teacher_factory()
    _wrong(client, teacher, address, 4)
    started = timezone.now()
    _wrong(client, teacher, address, 1)
    first = login_locked_until(teacher)
    assert first is not None
    assert 0.9 < (first - started).total_seconds() < 1.5
    time.sleep(1.2)
    assert login_locked_until(teacher) is None
    _wrong(client, teacher, address, 4)
    started = timezone.now()
    _wrong(client, teacher, address, 1)
    second = login_locked_until(teacher)
    assert second is not None
    assert 1.9 < (second - started).total_seconds() < 2.5


def test_an_address_past_the_ceiling_is_paused_for_every_account(client, teacher_factory, address, settings):
    settings.HOCBA_LOGIN_ADDRESS_FAILURES = 12
    # A guesser spraying one password over many logins, none of them reaching an account's limit.
    for n in range(12):
        response = _login(client, f"khong-co-{n}-{address}", "123456", address)
        assert ACCOUNT_LOCKED not in response.content.decode()
    teacher = teacher_factory()
    response = _login(client, teacher.username, PASSWORD, address)
    assert response.status_code == 200
    assert NETWORK_PAUSED in response.content.decode()
    # The same account from another address logs in.
    assert _login(client, teacher.username, PASSWORD, "192.0.2.77").status_code == 302


def test_the_address_ceiling_is_high_enough_for_a_schools_nat_by_default(settings):
    assert settings.HOCBA_LOGIN_ADDRESS_FAILURES >= 300
    assert settings.HOCBA_LOGIN_ACCOUNT_FAILURES == 5


def test_an_operator_unlocks_a_locked_account_from_the_admin_and_it_is_audited(
    client, client_as, teacher_factory, department_admin, address
):
    teacher = teacher_factory()
    _wrong(client, teacher, address, 5)
    assert login_locked_until(teacher) is not None

    operator = client_as(department_admin)
    response = operator.post(
        "/admin/portal/user/", {"action": "unlock_logins", "_selected_action": [str(teacher.pk)]}
    )
    assert response.status_code == 302
    assert login_locked_until(teacher) is None
    entry = AuditEntry.objects.get(
        action=AuditAction.USER_CHANGED, object_id=str(teacher.pk), changes__has_key="login_locked_until"
    )
    assert entry.actor == department_admin
    assert _login(client, teacher.username, PASSWORD, address).status_code == 302


def test_a_school_administrator_cannot_unlock_an_account(
    client, client_as, teacher_factory, school_admin, address
):
    teacher = teacher_factory()
    _wrong(client, teacher, address, 5)
    admin = client_as(school_admin)
    page = admin.get("/admin/portal/user/").content.decode()
    assert "unlock_logins" not in page
    admin.post("/admin/portal/user/", {"action": "unlock_logins", "_selected_action": [str(teacher.pk)]})
    assert login_locked_until(teacher) is not None
    assert not AuditEntry.objects.filter(
        object_id=str(teacher.pk), changes__has_key="login_locked_until"
    ).exists()
