"""A subject teacher fills a row of the grade book with the keyboard, in a real browser."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from portal.models import School, User
from tests.conftest import PASSWORD, SCHOOLS, student_make

pytestmark = pytest.mark.slow


@pytest.fixture
def e2e_class(django_db_blocker):
    """A class of the test school for this test only, committed so the server process sees it."""
    from schools.models import SchoolClass, SchoolYear, Subject
    from schools.services import class_create, student_enrol, teaching_assignment_set

    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOLS["school"][0])
        teacher = User.objects.get(username="subject_teacher")
        with school:
            year = SchoolYear.objects.get(is_current=True)
            name = f"8E{SchoolClass.objects.filter(name__startswith='8E').count() + 1}"
            school_class = class_create(school_year=year, name=name, grade=8, levels=school.levels)
            teaching_assignment_set(
                school_class=school_class, subject=Subject.objects.get(code="toan"), teacher=teacher
            )
            for number, full_name in enumerate(["Đinh Thị Ánh", "Vương Văn Bảo", "Quách Thu Cúc"], start=1):
                student = student_make(f"{name}-{number}", full_name, 2, dt.date(2012, 5, number))
                student_enrol(
                    student=student, school_class=school_class, enrolled_on=year.starts_on, number=number
                )
            yield school, school_class
        connection.set_schema_to_public()


def test_a_teacher_fills_a_row_with_the_keyboard_and_it_survives_a_reload(live_url, page, e2e_class):
    school, school_class = e2e_class
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", "subject_teacher")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")

    book = f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1"
    page.goto(book)
    rows = page.locator("#gradebook tbody tr")
    assert rows.count() == 3

    # Row 1, typed as a teacher types: a value, Tab to the next cell, and so on; Enter at the end.
    first = rows.nth(0)
    first.locator("input[name=regular_1]").click()
    for value in ["7", "8,5", "6", "9", "7"]:
        page.keyboard.type(value)
        page.keyboard.press("Tab")
    page.keyboard.type("8")
    page.keyboard.press("Enter")  # saves and moves down to row 2
    for field in ["regular_1", "regular_2", "regular_3", "regular_4", "mid", "end"]:
        first.locator(f"td.{field}.saved").wait_for(timeout=10_000)
    # (7 + 8.5 + 6 + 9 + 2·7 + 3·8) / 9 = 68.5 / 9 = 7.61… → 7,6
    assert first.locator("[data-average]").inner_text() == "7,6"

    # Row 2: Enter moved the cursor down into the same column; an invalid score is refused.
    focused = page.evaluate("document.activeElement.closest('tr').dataset.enrolment")
    assert focused == rows.nth(1).get_attribute("data-enrolment")
    page.keyboard.type("11")
    page.keyboard.press("ArrowUp")
    error_cell = rows.nth(1).locator("td.end.error")
    error_cell.wait_for(timeout=10_000)
    assert "Điểm là số từ 0 đến 10" in error_cell.locator(".msg").inner_text()

    page.reload()
    first = page.locator("#gradebook tbody tr").nth(0)
    assert [
        first.locator(f"input[name={f}]").input_value() for f in ("regular_1", "regular_2", "mid", "end")
    ] == [
        "7,0",
        "8,5",
        "7,0",
        "8,0",
    ]
    assert first.locator("[data-average]").inner_text() == "7,6"
    assert page.locator("#gradebook tbody tr").nth(1).locator("input[name=end]").input_value() == ""


def test_a_save_that_fails_on_the_network_stays_visible_and_is_retried(live_url, page, e2e_class):
    school, school_class = e2e_class
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", "subject_teacher")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")

    failures = {"left": 1}

    def flaky_network(route):
        if failures["left"]:
            failures["left"] -= 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/o/", flaky_network)
    page.goto(f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=2")
    row = page.locator("#gradebook tbody tr").nth(2)
    row.locator("input[name=mid]").click()
    page.keyboard.type("6,5")
    page.keyboard.press("Enter")  # the last row: Enter moves nowhere, but the value is sent

    row.locator("td.mid.offline").wait_for(timeout=5_000)  # the failure is shown...
    assert "Chưa lưu được" in row.locator("td.mid .msg").inner_text()
    row.locator("td.mid.saved").wait_for(timeout=10_000)  # ...and the retry goes through
    page.reload()
    assert page.locator("#gradebook tbody tr").nth(2).locator("input[name=mid]").input_value() == "6,5"


def _log_in(page, live_url: str, username: str = "subject_teacher") -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")


def test_a_refused_value_shows_its_message_and_is_not_sent_again(live_url, page, e2e_class):
    school, school_class = e2e_class
    _log_in(page, live_url)
    sent = []

    def refusing_proxy(route):
        sent.append(route.request.post_data)
        if "field=mid" in (route.request.post_data or ""):
            # A refusal that is not the portal's JSON: a proxy's or Django's own page (CSRF, size).
            route.fulfill(status=403, content_type="text/html", body="<h1>403 Forbidden</h1>")
        else:
            route.continue_()

    page.route("**/o/", refusing_proxy)
    page.goto(f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1")
    row = page.locator("#gradebook tbody tr").nth(0)

    # The server's own refusal: its message in the cell.
    row.locator("input[name=regular_1]").click()
    page.keyboard.type("11")
    page.keyboard.press("Tab")
    row.locator("td.regular_1.error").wait_for(timeout=10_000)
    assert "Điểm là số từ 0 đến 10" in row.locator("td.regular_1 .msg").inner_text()

    # A refusal without the portal's message: said as a refusal, with its status.
    row.locator("input[name=mid]").click()
    page.keyboard.type("7")
    page.keyboard.press("Tab")
    row.locator("td.mid.error").wait_for(timeout=10_000)
    assert row.locator("td.mid .msg").inner_text() == "Chưa lưu: máy chủ không chấp nhận giá trị này (403)"
    assert row.locator("td.mid.offline").count() == 0

    page.wait_for_timeout(4_000)  # a retry would come after 1 s, then 2 s
    assert len(sent) == 2, sent
    assert row.locator("input[name=mid]").get_attribute("aria-invalid") == "true"
    assert page.locator("#save-status").inner_text() == ""  # nothing left waiting to be saved


def test_a_value_typed_while_the_server_is_unreachable_is_retried_and_lands(live_url, page, e2e_class):
    school, school_class = e2e_class
    _log_in(page, live_url)
    answers = ["connectionrefused", 502, 503]  # 504 is answered as 502 and 503 are
    tries = []

    def server_away(route):
        tries.append(route.request.post_data)
        if answers:
            answer = answers.pop(0)
            if isinstance(answer, str):
                route.abort(answer)
            else:
                route.fulfill(status=answer, content_type="text/html", body="<h1>Bad Gateway</h1>")
        else:
            route.continue_()

    page.route("**/o/", server_away)
    page.goto(f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1")
    row = page.locator("#gradebook tbody tr").nth(1)
    row.locator("input[name=end]").click()
    page.keyboard.type("9,5")
    page.keyboard.press("Tab")

    row.locator("td.end.offline").wait_for(timeout=5_000)
    assert "Chưa lưu được" in row.locator("td.end .msg").inner_text()
    assert "đang chờ lưu" in page.locator("#save-status").inner_text()
    row.locator("td.end.saved").wait_for(timeout=20_000)  # 1 + 2 + 4 s of backoff
    assert len(tries) == 4
    page.reload()
    assert page.locator("#gradebook tbody tr").nth(1).locator("input[name=end]").input_value() == "9,5"
