"""The Department's forwarding page: who sees it, what it says, replaying dead letters."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from portal.models import AuditEntry
from registry.choices import OutboxState
from registry.models import OutboxMessage
from tests.signing_kit import issue

S = OutboxState
PAGE = "/so/kho-hoc-ba/"


@pytest.fixture
def messages(homeroom_teacher, principal, school, records):
    """Both records issued: two messages; the first acknowledged, the second a dead letter."""
    for record in records:
        issue(record, homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_schema_to_public()
    first, second = OutboxMessage.objects.order_by("pk")
    now = timezone.now()
    OutboxMessage.objects.filter(pk=first.pk).update(
        state=S.ACKNOWLEDGED, receipt_id="R-1", sent_at=now, decided_at=now, document=None
    )
    OutboxMessage.objects.filter(pk=second.pk).update(
        state=S.DEAD, attempts=20, last_status=503, last_error="HTTP 503 unavailable", last_attempt_at=now
    )
    return first, second


@pytest.mark.parametrize("who", ["principal", "division_manager", "homeroom_teacher", "school_admin"])
def test_only_department_staff_see_the_page(client_as, persona, who, db):
    assert client_as(persona(who)).get(PAGE).status_code == 404


def test_a_visitor_is_sent_to_log_in(client, db):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_shows_the_queue_the_share_the_errors_and_dead_letters(
    client_as, department_officer, messages, school, django_assert_max_num_queries
):
    client = client_as(department_officer)
    with django_assert_max_num_queries(40):
        page = client.get(PAGE).content.decode()
    assert "1 trên 2 học bạ đang có hiệu lực đã được Bộ xác nhận" in page
    assert "50 %" in page
    assert school.name in page and "HTTP 503 unavailable" in page
    assert messages[1].record_id in page
    assert "Gửi lại" not in page  # an officer reads; only an administrator replays


def test_the_page_costs_the_same_queries_with_more_messages(client_as, department_officer, messages, school):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    client = client_as(department_officer)
    client.get(PAGE)  # the first request also loads the session's user and roles
    with CaptureQueriesContext(db) as few:
        client.get(PAGE)
    first = messages[0]
    for n in range(30):
        OutboxMessage.objects.create(
            school=school,
            record_id=f"{school.code}.X{n}.2025-2026",
            version=1,
            kind="submit",
            idempotency_key=f"{n:064x}",
            document=b"<x/>",
            student_code=f"X{n}",
            personal_id=first.personal_id,
            state=S.PENDING,
            last_error="HTTP 500",
            last_attempt_at=timezone.now(),
        )
    with CaptureQueriesContext(db) as many:
        client.get(PAGE)
    assert len(many) == len(few)


def test_an_administrator_replays_a_dead_letter_and_it_is_audited(client_as, department_admin, messages):
    dead = messages[1]
    client = client_as(department_admin)
    assert "Gửi lại" in client.get(PAGE).content.decode()
    response = client.post(f"{PAGE}gui-lai/{dead.pk}/")
    assert response.status_code == 302
    dead.refresh_from_db()
    assert (dead.state, dead.attempts) == (S.PENDING, 0)
    assert AuditEntry.objects.filter(action="ministry_message_replayed", actor=department_admin).count() == 1
    # Again: it is no longer a dead letter, said in words, nothing changed.
    page = client.post(f"{PAGE}gui-lai/{dead.pk}/", follow=True).content.decode()
    assert "Chỉ gửi lại được bản đã dừng sau nhiều lần lỗi" in page


def test_an_officer_cannot_replay(client_as, department_officer, messages):
    dead = messages[1]
    assert client_as(department_officer).post(f"{PAGE}gui-lai/{dead.pk}/").status_code == 403
    assert client_as(department_officer).post(f"{PAGE}gui-lai-tat-ca/").status_code == 403
    dead.refresh_from_db()
    assert dead.state == S.DEAD


def test_replay_of_an_unknown_message_is_404(client_as, department_admin, db):
    assert client_as(department_admin).post(f"{PAGE}gui-lai/999999/").status_code == 404


def test_replay_all_sends_every_dead_letter_again(client_as, department_admin, messages):
    client_as(department_admin).post(f"{PAGE}gui-lai-tat-ca/")
    assert not OutboxMessage.objects.filter(state=S.DEAD).exists()
