"""The grade book: who sees and edits which cells, validation, locking, averages, the audit trail."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext, override

from schools.models import Enrolment, Term
from transcripts.models import AssessmentChange, SubjectTermScores


def book_url(school, school_class, subject="toan", suffix=""):
    return f"/truong/{school.code}/so-diem/{school_class.pk}/{subject}/{suffix}"


def first_enrolment(school_class) -> Enrolment:
    return Enrolment.objects.filter(school_class=school_class).order_by("number").first()


def post_cell(client, school, school_class, subject="toan", **data):
    data.setdefault("term", "1")
    return client.post(book_url(school, school_class, subject, "o/"), data, HTTP_ACCEPT_LANGUAGE="vi")


def test_a_subject_teacher_saves_a_score_and_the_change_is_audited(
    client_as, subject_teacher, school, secondary_class
):
    enrolment = first_enrolment(secondary_class)

    response = post_cell(
        client_as(subject_teacher),
        school,
        secondary_class,
        enrolment=enrolment.pk,
        field="regular_1",
        value="7,5",
    )

    assert response.status_code == 200, response.content
    assert response.json()["value"] == "7,5"
    connection.set_tenant(school)
    row = SubjectTermScores.objects.get(enrolment=enrolment, term=1)
    assert str(row.regular_1) == "7.5"
    change = AssessmentChange.objects.get(row_id=row.pk, field="regular_1")
    assert (change.actor_id, change.old, change.new) == (subject_teacher.pk, "", "7,5")


@pytest.mark.parametrize("value", ["11", "-1", "7.25", "abc", "10.5"])
def test_an_invalid_score_is_refused_in_vietnamese_and_not_saved(
    client_as, subject_teacher, school, secondary_class, value
):
    enrolment = first_enrolment(secondary_class)
    response = post_cell(
        client_as(subject_teacher), school, secondary_class, enrolment=enrolment.pk, field="mid", value=value
    )

    assert response.status_code == 400
    assert "Điểm là số từ 0 đến 10" in response.json()["error"]
    connection.set_tenant(school)
    assert not SubjectTermScores.objects.filter(enrolment=enrolment, mid__isnull=False).exists()


def test_the_term_average_appears_once_the_row_is_complete_rounded_half_up(
    client_as, subject_teacher, school, secondary_class
):
    client = client_as(subject_teacher)
    enrolment = first_enrolment(secondary_class).pk
    # Lower secondary Toán has 4 regular scores: (7+8+6+9 + 2*7 + 3*8.5) / 9 = 69.5/9 = 7.722… → 7,7
    for field, value in [
        ("regular_1", "7"),
        ("regular_2", "8"),
        ("regular_3", "6"),
        ("regular_4", "9"),
        ("mid", "7"),
    ]:
        assert (
            post_cell(client, school, secondary_class, enrolment=enrolment, field=field, value=value).json()[
                "average"
            ]
            == ""
        )
    last = post_cell(client, school, secondary_class, enrolment=enrolment, field="end", value="8,5")
    assert last.json()["average"] == "7,7"


def test_a_teacher_cannot_enter_another_teachers_subject(
    client_as, colleague, homeroom_teacher, principal, school, secondary_class
):
    enrolment = first_enrolment(secondary_class).pk
    for user in (colleague, homeroom_teacher, principal):
        response = post_cell(
            client_as(user), school, secondary_class, enrolment=enrolment, field="mid", value="8"
        )
        assert response.status_code == 403, user


def test_a_field_the_subject_does_not_have_is_refused(client_as, subject_teacher, school, secondary_class):
    # Toán has four regular scores, not five; and a scored subject has no Đ/CĐ level.
    enrolment = first_enrolment(secondary_class).pk
    for field in ("regular_5", "level", "test_score"):
        response = post_cell(
            client_as(subject_teacher), school, secondary_class, enrolment=enrolment, field=field, value="8"
        )
        assert response.status_code == 400, field
        with override("vi"):
            assert response.json()["error"] == gettext("Unknown field."), field


def test_a_locked_term_refuses_changes_until_the_principal_unlocks_it(
    client_as, subject_teacher, principal, school, secondary_class
):
    from transcripts.services import term_lock_set

    connection.set_tenant(school)
    term = Term.objects.get(school_year=secondary_class.school_year, number=1)
    term_lock_set(actor=principal, school=school, term=term, locked=True)
    enrolment = first_enrolment(secondary_class).pk

    refused = post_cell(
        client_as(subject_teacher), school, secondary_class, enrolment=enrolment, field="mid", value="8"
    )
    assert refused.status_code == 400
    assert "đã khóa" in refused.json()["error"]
    # Term II stays open.
    assert (
        post_cell(
            client_as(subject_teacher),
            school,
            secondary_class,
            enrolment=enrolment,
            field="mid",
            value="8",
            term="2",
        ).status_code
        == 200
    )

    connection.set_tenant(school)
    term_lock_set(actor=principal, school=school, term=term, locked=False)
    assert (
        post_cell(
            client_as(subject_teacher), school, secondary_class, enrolment=enrolment, field="mid", value="8"
        ).status_code
        == 200
    )


def test_only_the_principal_locks_a_term(subject_teacher, school, secondary_class):
    from django.core.exceptions import PermissionDenied

    from transcripts.services import term_lock_set

    connection.set_tenant(school)
    term = Term.objects.get(school_year=secondary_class.school_year, number=1)
    with (
        override("en"),
        pytest.raises(
            PermissionDenied, match=r"Only the principal or a vice-principal locks and unlocks terms"
        ),
    ):
        term_lock_set(actor=subject_teacher, school=school, term=term, locked=True)
    term.refresh_from_db()
    assert term.locked_at is None


def test_a_cells_history_is_one_request_away(client_as, subject_teacher, school, secondary_class):
    client = client_as(subject_teacher)
    enrolment = first_enrolment(secondary_class).pk
    post_cell(client, school, secondary_class, enrolment=enrolment, field="end", value="6")
    post_cell(client, school, secondary_class, enrolment=enrolment, field="end", value="6,5")

    response = client.get(
        book_url(school, secondary_class, suffix="lich-su/"),
        {"enrolment": enrolment, "field": "end", "term": "1"},
    )

    assert response.status_code == 200
    changes = list(response.context["changes"])
    assert [(c.old, c.new) for c in changes] == [("6,0", "6,5"), ("", "6,0")]


@pytest.mark.parametrize(
    ("persona_name", "status", "editable"),
    [
        ("subject_teacher", 200, True),
        ("homeroom_teacher", 200, False),
        ("principal", 200, False),
        ("school_admin", 200, False),
        ("department_officer", 200, False),  # a supervisor with a data grant reads
        ("colleague", 403, None),  # teaches another subject of the class
        ("department_admin", 403, None),
        ("teacher_of_another_school", 404, None),
        ("other_division_officer", 404, None),
    ],
)
def test_the_grade_book_permission_matrix(
    client_as, persona, school, secondary_class, persona_name, status, editable
):
    response = client_as(persona(persona_name)).get(book_url(school, secondary_class))
    assert response.status_code == status
    if status == 200:
        assert response.context["editable"] is editable


def test_primary_levels_and_test_scores(client_as, homeroom_teacher, subject_teacher, school, primary_class):
    enrolment = first_enrolment(primary_class).pk
    teacher = client_as(homeroom_teacher)
    # The homeroom teacher enters the subjects without a specialist teacher (Toán here).
    ok = post_cell(
        teacher,
        school,
        primary_class,
        "toan",
        enrolment=enrolment,
        field="level",
        value="t",
        period="end1",
        term="",
    )
    assert ok.status_code == 200 and ok.json()["value"] == "T"
    assert (
        post_cell(
            teacher,
            school,
            primary_class,
            "toan",
            enrolment=enrolment,
            field="test_score",
            value="9",
            period="end1",
            term="",
        ).status_code
        == 200
    )
    bad = post_cell(
        teacher,
        school,
        primary_class,
        "toan",
        enrolment=enrolment,
        field="test_score",
        value="9,5",
        period="end1",
        term="",
    )
    assert bad.status_code == 400 and "số nguyên từ 1 đến 10" in bad.json()["error"]
    # Đạo đức has no periodic test.
    assert (
        post_cell(
            teacher,
            school,
            primary_class,
            "dao_duc",
            enrolment=enrolment,
            field="test_score",
            value="9",
            period="end1",
            term="",
        ).status_code
        == 400
    )
    # Ngoại ngữ 1 has its own teacher: the homeroom teacher may not enter it, its teacher may.
    assert (
        post_cell(
            teacher,
            school,
            primary_class,
            "ngoai_ngu_1",
            enrolment=enrolment,
            field="level",
            value="H",
            period="end1",
            term="",
        ).status_code
        == 403
    )
    assert (
        post_cell(
            client_as(subject_teacher),
            school,
            primary_class,
            "ngoai_ngu_1",
            enrolment=enrolment,
            field="level",
            value="H",
            period="end1",
            term="",
        ).status_code
        == 200
    )


def _grow_class(school_class, count: int) -> None:
    import datetime as dt

    from schools.services import student_enrol
    from tests.conftest import student_make

    start = Enrolment.objects.filter(school_class=school_class).count()
    for i in range(count):
        student = student_make(
            f"X{school_class.pk}-{start + i}", f"Học Sinh {start + i}", 1, dt.date(2012, 1, 1)
        )
        student_enrol(
            student=student, school_class=school_class, enrolled_on=dt.date(2025, 9, 5), number=start + i + 1
        )


def test_the_grade_book_costs_the_same_queries_for_45_students_as_for_50(
    client_as, subject_teacher, school, secondary_class
):
    client = client_as(subject_teacher)
    connection.set_tenant(school)
    _grow_class(secondary_class, 41)  # 4 + 41 = 45 students
    client.get(book_url(school, secondary_class))
    with CaptureQueriesContext(connection) as at_45:
        page = client.get(book_url(school, secondary_class))
    assert len(page.context["book"].rows) == 45

    connection.set_tenant(school)
    _grow_class(secondary_class, 5)
    with CaptureQueriesContext(connection) as at_50:
        assert len(client.get(book_url(school, secondary_class)).context["book"].rows) == 50

    assert len(at_45) == len(at_50)
    assert len(at_45) <= 13  # twelve statements at most, after one SET search_path at most


def test_a_cell_save_takes_a_handful_of_queries(client_as, subject_teacher, school, secondary_class):
    client = client_as(subject_teacher)
    enrolment = first_enrolment(secondary_class).pk
    post_cell(client, school, secondary_class, enrolment=enrolment, field="regular_1", value="5")
    with CaptureQueriesContext(connection) as queries:
        post_cell(client, school, secondary_class, enrolment=enrolment, field="regular_2", value="6")
    real = [q for q in queries if not q["sql"].startswith("SET search_path")]
    assert len(real) <= 14, [q["sql"][:80] for q in real]


def test_the_audit_trail_cannot_be_rewritten(client_as, subject_teacher, school, secondary_class):
    from django.db import transaction
    from django.db.utils import DatabaseError

    post_cell(
        client_as(subject_teacher),
        school,
        secondary_class,
        enrolment=first_enrolment(secondary_class).pk,
        field="mid",
        value="5",
    )
    connection.set_tenant(school)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE transcripts_assessmentchange SET new = '10'")


def test_the_principal_locks_a_term_from_the_page_and_it_is_audited(
    client_as, principal, subject_teacher, school, secondary_class
):
    from portal.models import AuditEntry

    connection.set_tenant(school)
    term = Term.objects.get(school_year=secondary_class.school_year, number=1)
    url = f"/truong/{school.code}/so-diem/hoc-ki/{term.pk}/khoa/"

    assert client_as(subject_teacher).post(url, {"locked": "1"}).status_code == 403
    assert client_as(principal).post(url, {"locked": "1"}).status_code == 302

    connection.set_tenant(school)
    term.refresh_from_db()
    assert term.locked_by_id == principal.pk
    connection.set_schema_to_public()
    entry = AuditEntry.objects.filter(action="term_locked", school=school).latest("id")
    assert entry.actor == principal


def test_the_grade_book_index_offers_the_homeroom_view_only_to_those_who_may_open_it(
    client_as, subject_teacher, homeroom_teacher, school
):
    def homeroom_links(user):
        page = client_as(user).get(f"/truong/{school.code}/so-diem/")
        return [homeroom for _class, _subjects, homeroom in page.context["books"]]

    assert homeroom_links(homeroom_teacher) and all(homeroom_links(homeroom_teacher))
    assert homeroom_links(subject_teacher) and not any(homeroom_links(subject_teacher))
