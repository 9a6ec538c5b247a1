"""The grade book survives the connection dropping: cells typed offline wait on the device, survive
a reload served by the service worker, and reach the database once, in typing order; a cell
changed meanwhile elsewhere is a conflict the teacher resolves (issue 14)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from django.db import connection

from portal.models import School, User
from tests.conftest import PASSWORD, SCHOOLS, student_make
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.slow

SCORES = ("regular_1", "regular_2", "regular_3", "regular_4", "mid", "end")
NAMES = ["Lò Văn An", "Hà Thị Bích", "Sùng A Chư", "Vàng Thị Dung", "Lường Văn Én", "Giàng Thị Gấm"]


@pytest.fixture
def offline_class(django_db_blocker):
    """Six students in mathematics (six score columns in term I): 30 cells and one row to spare."""
    from schools.models import SchoolClass, SchoolYear, Subject
    from schools.services import class_create, student_enrol, teaching_assignment_set

    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOLS["school"][0])
        teacher = User.objects.get(username="subject_teacher")
        with school:
            year = SchoolYear.objects.get(is_current=True)
            name = f"8N{SchoolClass.objects.filter(name__startswith='8N').count() + 1}"
            school_class = class_create(school_year=year, name=name, grade=8, levels=school.levels)
            subject = Subject.objects.get(code="toan")
            teaching_assignment_set(school_class=school_class, subject=subject, teacher=teacher)
            enrolments = []
            for number, full_name in enumerate(NAMES, start=1):
                student = student_make(f"{name}-{number}", full_name, 1, dt.date(2012, 3, number))
                enrolments.append(
                    student_enrol(
                        student=student, school_class=school_class, enrolled_on=year.starts_on, number=number
                    )
                )
        connection.set_schema_to_public()
        yield school, school_class, subject, teacher, [e.pk for e in enrolments]


def _save_elsewhere(django_db_blocker, school, school_class, subject, teacher, enrolment_id, field, raw):
    """The same teacher on another device (only the assigned teacher may write this subject)."""
    from transcripts.services import Cell, assessment_cell_save

    with django_db_blocker.unblock(), school:
        assessment_cell_save(
            actor=teacher,
            school=school,
            school_class=school_class,
            cell=Cell(enrolment_id=enrolment_id, field=field, subject_id=subject.pk, term=1),
            raw=raw,
        )
    connection.set_schema_to_public()


def _changes(django_db_blocker, school, enrolment_ids) -> list[tuple[int, int, str, str, str]]:
    from transcripts.models import AssessmentChange

    with django_db_blocker.unblock(), school:
        rows = list(
            AssessmentChange.objects.filter(enrolment_id__in=enrolment_ids)
            .order_by("id")
            .values_list("id", "enrolment_id", "field", "old", "new")
        )
    connection.set_schema_to_public()
    return rows


def _log_in(page, live_url: str) -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", "subject_teacher")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")


def _open_and_keep(page, url: str) -> None:
    """Open the book online and wait until the service worker has kept a copy of it."""
    page.goto(url)
    page.wait_for_selector("#gradebook[data-ready='1']")
    kept = page.evaluate(
        """async () => {
            for (let i = 0; i < 150; i++) {
                if (await caches.match(location.href, {ignoreVary: true})) return true;
                await new Promise((wake) => setTimeout(wake, 100));
            }
            return false;
        }"""
    )
    assert kept, "the service worker kept no copy of the page"


def _cell(page, row: int, field: str):
    return page.locator("#gradebook tbody tr").nth(row).locator(f"td.{field}")


def _type(page, row: int, field: str, value: str) -> None:
    _cell(page, row, field).locator("input").click()
    page.keyboard.type(value)
    page.keyboard.press("Tab")


def test_thirty_cells_typed_offline_survive_a_reload_and_reach_the_database_once_in_order(
    live_url, browser, offline_class, django_db_blocker
):
    school, school_class, subject, teacher, enrolments = offline_class
    context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    reached = []  # cell saves the browser sent towards the server
    page.on(
        "request",
        lambda r: reached.append(r.post_data) if r.method == "POST" and r.url.endswith("/o/") else None,
    )
    _log_in(page, live_url)
    book = f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1"
    _open_and_keep(page, book)
    before = _changes(django_db_blocker, school, enrolments)
    assert before == []

    context.set_offline(True)
    typed = []  # (row, field, value) in typing order
    for row in range(5):
        for column, field in enumerate(SCORES):
            value = f"{(row + column) % 9 + 1},5" if column % 2 else str((row * 3 + column) % 9 + 1)
            _type(page, row, field, value)
            typed.append((row, field, value))
    assert len(typed) == 30
    page.locator("#gradebook td.pending").nth(29).wait_for()
    assert page.locator("#gradebook td.pending").count() == 30
    assert "Chưa gửi" in _cell(page, 0, "regular_1").locator(".msg").inner_text()
    assert page.locator("#save-status").inner_text().startswith("30 ")

    # Meanwhile, on another device: two of the typed cells change, and one cell of the sixth row.
    mine_kept, theirs_kept = (1, "mid"), (3, "end")
    _save_elsewhere(django_db_blocker, school, school_class, subject, teacher, enrolments[1], "mid", "2")
    _save_elsewhere(django_db_blocker, school, school_class, subject, teacher, enrolments[3], "end", "3")
    _save_elsewhere(django_db_blocker, school, school_class, subject, teacher, enrolments[5], "mid", "4")
    elsewhere = _changes(django_db_blocker, school, enrolments)
    assert len(elsewhere) == 3

    # Reload, still offline: the page comes from the service worker's copy, not from the server
    # (the sixth row still shows the value it had when the copy was kept).
    response = page.reload()
    assert response is not None and response.from_service_worker
    page.wait_for_selector("#gradebook[data-ready='1']")
    assert _cell(page, 5, "mid").locator("input").input_value() == ""
    page.locator("#gradebook td.pending").nth(29).wait_for()
    for row, field, value in typed:
        assert _cell(page, row, field).locator("input").input_value() == value
    assert reached == []

    context.set_offline(False)
    page.locator("#gradebook td.conflict").nth(1).wait_for(timeout=30_000)
    wait_until(page, "!document.querySelector('#gradebook .pending, #gradebook .saving')", timeout=30_000)
    conflict = _cell(page, *mine_kept)
    assert "2,0" in conflict.locator(".choice").inner_text()  # theirs, and mine
    assert {(r, f): v for r, f, v in typed}[mine_kept] in conflict.inner_text()
    conflict.get_by_role("button", name="Giữ giá trị của tôi").click()
    _cell(page, *theirs_kept).get_by_role("button", name="Giữ giá trị trên máy chủ").click()
    wait_until(
        page,
        "!document.querySelector('#gradebook .pending, #gradebook .saving, #gradebook .conflict')",
        timeout=30_000,
    )
    assert page.locator("#save-status").inner_text() == ""
    assert _cell(page, *theirs_kept).locator("input").input_value() == "3,0"

    # In the database: each typed cell once, in typing order; the one I kept, after my choice;
    # the one I gave up, never.
    mine = [c for c in _changes(django_db_blocker, school, enrolments) if c not in elsewhere]
    expected = [(enrolments[r], f) for r, f, _v in typed if (r, f) not in (mine_kept, theirs_kept)]
    expected.append((enrolments[mine_kept[0]], mine_kept[1]))
    assert [(e, f) for _id, e, f, _old, _new in mine] == expected
    assert [c[0] for c in mine] == sorted(c[0] for c in mine)
    assert mine[-1][3] == "2,0"  # mine, over theirs

    page.reload()
    values = {(r, f): _cell(page, r, f).locator("input").input_value() for r, f, _v in typed}
    for row, field, value in typed:
        if (row, field) == theirs_kept:
            assert values[(row, field)] == "3,0"
        else:
            assert values[(row, field)].replace(",0", "") == value.replace(",0", "")
    context.close()


def _saves(page) -> list[str]:
    """The cell saves this page sends (POSTs to a save URL), recorded as they leave."""
    sent: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/o/") and sent.append(r.post_data))
    return sent


def test_a_value_refused_after_reconnecting_is_shown_and_not_sent_again(live_url, page, offline_class):
    school, school_class, *_rest = offline_class
    sent = _saves(page)
    _log_in(page, live_url)
    _open_and_keep(page, f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1")

    page.context.set_offline(True)
    _type(page, 0, "regular_1", "11")
    _type(page, 0, "regular_2", "7")
    _cell(page, 0, "regular_2").and_(page.locator(".pending")).wait_for()
    page.context.set_offline(False)

    _cell(page, 0, "regular_1").and_(page.locator(".error")).wait_for(timeout=30_000)
    assert "Điểm là số từ 0 đến 10" in _cell(page, 0, "regular_1").locator(".msg").inner_text()
    _cell(page, 0, "regular_2").and_(page.locator(".saved")).wait_for(timeout=30_000)
    page.wait_for_timeout(4_000)  # a retry would come after 1 s, then 2 s
    assert len(sent) == 2, sent
    assert page.locator("#save-status").inner_text() == ""

    page.reload()  # nothing of the refusal left on the device to send again
    page.wait_for_selector("#gradebook[data-ready='1']")
    assert page.locator("#gradebook .pending").count() == 0
    assert _cell(page, 0, "regular_1").locator("input").input_value() == ""
    assert len(sent) == 2, sent


def test_a_refusal_met_on_another_terms_page_waits_on_the_device_for_its_own_page(
    live_url, page, offline_class
):
    # Typed offline in term I, sent from term II's page (same book, same queue): the refused
    # cell is not on the page that meets the refusal; it is shown on its own page, once.
    school, school_class, *_rest = offline_class
    sent = _saves(page)
    page.on("dialog", lambda dialog: dialog.accept())  # leaving with unsent cells asks first
    _log_in(page, live_url)
    book = f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/"
    _open_and_keep(page, book + "?hk=2")
    _open_and_keep(page, book + "?hk=1")

    page.context.set_offline(True)
    _type(page, 1, "regular_1", "11")
    _type(page, 1, "regular_2", "7")
    _cell(page, 1, "regular_2").and_(page.locator(".pending")).wait_for()
    page.goto(book + "?hk=2")  # served by the service worker
    page.wait_for_selector("#gradebook[data-ready='1']")
    # The queue is loaded (asynchronously): the status line counts the two cells waiting.
    wait_until(page, "document.querySelector('#save-status').textContent !== ''")
    page.context.set_offline(False)

    wait_until(page, "document.querySelector('#save-status').textContent === ''", timeout=30_000)
    assert len(sent) == 2, sent
    page.goto(book + "?hk=1")
    page.wait_for_selector("#gradebook[data-ready='1']")
    refused = _cell(page, 1, "regular_1")
    refused.and_(page.locator(".error")).wait_for(timeout=10_000)
    assert "Điểm là số từ 0 đến 10" in refused.locator(".msg").inner_text()
    assert refused.locator("input").input_value() == "11"
    assert _cell(page, 1, "regular_2").locator("input").input_value() == "7,0"

    page.reload()  # shown once: nothing of it left on the device, and never sent again
    page.wait_for_selector("#gradebook[data-ready='1']")
    assert _cell(page, 1, "regular_1").and_(page.locator(".error")).count() == 0
    assert _cell(page, 1, "regular_1").locator("input").input_value() == ""
    assert len(sent) == 2, sent


def test_closing_the_tab_with_unsent_cells_warns_and_reopening_it_sends_them(
    live_url, browser, offline_class, django_db_blocker
):
    school, school_class, _subject, _teacher, enrolments = offline_class
    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    _log_in(page, live_url)
    book = f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1"
    _open_and_keep(page, book)
    context.set_offline(True)
    _type(page, 2, "mid", "8,5")
    _cell(page, 2, "mid").and_(page.locator(".pending")).wait_for()

    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.accept()  # the teacher leaves anyway
    page.wait_for_event("close")

    context.set_offline(False)
    again = context.new_page()
    again.goto(book)
    _cell(again, 2, "mid").and_(again.locator(".saved")).wait_for(timeout=30_000)
    assert _cell(again, 2, "mid").locator("input").input_value() == "8,5"
    assert [(e, f) for _id, e, f, _o, _n in _changes(django_db_blocker, school, enrolments)] == [
        (enrolments[2], "mid")
    ]
    context.close()


def test_another_users_queue_on_this_device_is_neither_shown_nor_sent(live_url, page, offline_class):
    school, school_class, _subject, teacher, enrolments = offline_class
    sent = _saves(page)
    _log_in(page, live_url)
    book = f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1"
    _open_and_keep(page, book)
    save_url = page.get_attribute("#gradebook", "data-save-url")
    # Left on this browser by someone else: the same cell of the same book, another user's id.
    page.evaluate(
        """([owner, url, enrolment]) => new Promise((done) => {
            const open = indexedDB.open("hocba-gradebook", 1);
            open.onsuccess = () => {
                const tx = open.result.transaction("queue", "readwrite");
                tx.objectStore("queue").put({owner, url, enrolment, field: "end", term: "1", period: "",
                    key: `${url}|${enrolment}|end|1|`, value: "1", expected: "", state: "pending"});
                tx.oncomplete = () => { open.result.close(); done(); };
            };
        })""",
        [f"{teacher.pk + 100000}|{school.code}", save_url, str(enrolments[0])],
    )
    page.reload()
    page.wait_for_selector("#gradebook[data-ready='1']")
    _type(page, 1, "end", "6")  # this user's own edit goes through...
    _cell(page, 1, "end").and_(page.locator(".saved")).wait_for(timeout=30_000)
    assert len(sent) == 1 and "value=6" in sent[0], sent  # ...and only it
    assert _cell(page, 0, "end").locator("input").input_value() == ""
    assert page.locator("#gradebook .pending").count() == 0


def test_a_queue_is_not_sent_under_the_session_of_someone_who_signed_in_meanwhile(
    live_url, browser, page, offline_class
):
    school, school_class, *_rest = offline_class
    sent = _saves(page)
    _log_in(page, live_url)
    _open_and_keep(page, f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1")
    page.context.set_offline(True)
    _type(page, 4, "regular_3", "5")
    _cell(page, 4, "regular_3").and_(page.locator(".pending")).wait_for()

    # A colleague signs in on this browser (their session cookie replaces the teacher's).
    other = browser.new_context()
    colleague = other.new_page()
    colleague.goto(f"{live_url}/accounts/login/")
    colleague.fill("input[name=login]", "colleague")
    colleague.fill("input[name=password]", PASSWORD)
    colleague.click("button[type=submit]")
    colleague.wait_for_url(f"{live_url}/")
    page.context.add_cookies([c for c in other.cookies() if c["name"] == "sessionid"])
    other.close()

    page.context.set_offline(False)
    status = page.locator("#save-status")
    status.filter(has_text="tài khoản khác").wait_for(timeout=30_000)
    assert sent == []
    assert _cell(page, 4, "regular_3").locator("input").input_value() == "5"  # kept for its author


def test_signing_out_clears_the_kept_pages_and_the_queue(live_url, page, offline_class):
    school, school_class, *_rest = offline_class
    _log_in(page, live_url)
    _open_and_keep(page, f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1")
    kept = "async () => [(await caches.keys()).length, (await indexedDB.databases()).map((d) => d.name)]"
    assert page.evaluate(kept) == [1, ["hocba-gradebook"]]

    with page.expect_navigation():
        page.locator("form[action$='/accounts/logout/'] button").click()
    assert page.evaluate(kept) == [0, []]
    registrations = page.evaluate("async () => (await navigator.serviceWorker.getRegistrations()).length")
    assert registrations == 0


@pytest.fixture
def homeroom_world(django_db_blocker):
    """A homeroom teacher of their own (a second factor: they sign) and their class of three."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from portal.choices import Role
    from portal.models import RoleAssignment
    from schools.models import SchoolClass, SchoolYear
    from schools.services import class_create, student_enrol

    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOLS["school"][0])
        teacher = User.objects.create_user(
            username=f"gvcn-off-{tag}",
            password=PASSWORD,
            full_name="Lò Thị Chủ Nhiệm",
            email=f"{tag}@test.local",
        )
        RoleAssignment.objects.create(user=teacher, role=Role.HOMEROOM_TEACHER, school=school)
        secret = generate_totp_secret()
        TOTP.activate(teacher, secret)
        with school:
            year = SchoolYear.objects.get(is_current=True)
            name = f"8H{SchoolClass.objects.filter(name__startswith='8H').count() + 1}"
            school_class = class_create(
                school_year=year, name=name, grade=8, levels=school.levels, homeroom_teacher=teacher
            )
            enrolments = [
                student_enrol(
                    student=student_make(f"{name}-{n}", full_name, 2, dt.date(2012, 4, n)),
                    school_class=school_class,
                    enrolled_on=year.starts_on,
                    number=n,
                ).pk
                for n, full_name in enumerate(NAMES[:3], start=1)
            ]
        connection.set_schema_to_public()
    return school, school_class, teacher, secret, enrolments


def test_the_homeroom_page_keeps_conduct_typed_offline_and_sends_it_in_order(
    live_url, page, homeroom_world, django_db_blocker
):
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    school, school_class, teacher, secret, enrolments = homeroom_world
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", teacher.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/accounts/2fa/authenticate/")
    page.fill("input[name=code]", format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")
    _open_and_keep(page, f"{live_url}/truong/{school.code}/so-diem/lop/{school_class.pk}/")

    page.context.set_offline(True)
    typed = [
        (0, "conduct_term1", "T"),
        (1, "conduct_term1", "K"),
        (2, "conduct_term1", "T"),
        (0, "absences", "2"),
    ]
    for row, field, value in typed:
        _type(page, row, field, value)
    page.locator("#gradebook .pending").nth(3).wait_for()
    response = page.reload()
    assert response is not None and response.from_service_worker
    page.locator("#gradebook .pending").nth(3).wait_for()

    page.context.set_offline(False)
    wait_until(page, "!document.querySelector('#gradebook .pending, #gradebook .saving')", timeout=30_000)
    assert page.locator("#gradebook .saved").count() == 4
    changes = _changes(django_db_blocker, school, enrolments)
    assert [(e, f, new) for _id, e, f, _old, new in changes] == [
        (enrolments[row], field, value) for row, field, value in typed
    ]


def test_two_tabs_of_one_book_send_the_queue_once(live_url, browser, offline_class, django_db_blocker):
    school, school_class, _subject, _teacher, enrolments = offline_class
    context = browser.new_context(locale="vi-VN")
    sent: list[str] = []
    context.on("request", lambda r: r.method == "POST" and r.url.endswith("/o/") and sent.append(r.post_data))
    first = context.new_page()
    _log_in(first, live_url)
    book = f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1"
    _open_and_keep(first, book)
    context.set_offline(True)
    typed = [(row, field) for row in range(2) for field in SCORES]
    for row, field in typed:
        _type(first, row, field, "7")
    first.locator("#gradebook .pending").nth(len(typed) - 1).wait_for()
    second = context.new_page()  # the same book in another tab, from the kept copy
    second.goto(book)
    second.locator("#gradebook .pending").nth(len(typed) - 1).wait_for()

    context.set_offline(False)
    for tab in (first, second):
        wait_until(tab, "!document.querySelector('#gradebook .pending, #gradebook .saving')", timeout=30_000)
    changes = _changes(django_db_blocker, school, enrolments)
    assert [(e, f) for _id, e, f, _o, _n in changes] == [(enrolments[r], f) for r, f in typed]
    assert len(sent) == len(typed), sent  # each sent by one tab only (a lock), not once per tab
    context.close()


def test_a_save_the_server_fails_holds_the_cells_after_it_so_the_order_is_kept(
    live_url, page, offline_class, django_db_blocker
):
    school, school_class, _subject, _teacher, enrolments = offline_class
    failures = {"left": 2}

    def failing_once_on_the_third(route):
        if "field=regular_3" in (route.request.post_data or "") and failures["left"]:
            failures["left"] -= 1
            route.fulfill(status=503, content_type="text/html", body="<h1>Service Unavailable</h1>")
        else:
            route.continue_()

    page.route("**/o/", failing_once_on_the_third)
    _log_in(page, live_url)
    _open_and_keep(page, f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1")
    page.context.set_offline(True)
    for field in SCORES:
        _type(page, 0, field, "6")
    page.locator("#gradebook .pending").nth(len(SCORES) - 1).wait_for()
    page.context.set_offline(False)

    _cell(page, 0, "regular_3").and_(page.locator(".offline")).wait_for(timeout=30_000)
    assert _cell(page, 0, "regular_4").and_(page.locator(".pending")).count() == 1  # waits its turn
    settled = "!document.querySelector('#gradebook .pending, #gradebook .saving, #gradebook .offline')"
    wait_until(page, settled, timeout=30_000)
    assert failures["left"] == 0
    changes = _changes(django_db_blocker, school, enrolments)
    assert [f for _id, _e, f, _o, _n in changes] == list(SCORES)
