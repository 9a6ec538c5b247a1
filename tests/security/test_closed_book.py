"""A closed book stays closed (issue 9, findings 1 and 3): once the principal approves a class's
year, nothing about its students' assessments changes, whatever path writes; the August
re-assessment is the one window, for the subjects the rules name, and the August close shuts it.

The database refuses by itself (raw SQL below, as for signed records), and the services refuse
first with a message the teacher can read.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from portal.choices import Role, SchoolLevel
from portal.models import RoleAssignment, School, User
from schools.models import Enrolment, SchoolClass, SchoolYear, Student, Subject, TeachingAssignment
from schools.services import class_create, student_enrol
from tests.conftest import SCHOOLS, student_make
from tests.schools.test_demo import demo_school
from tests.security.races import race_the_approval
from tests.transcripts.test_year_close import complete_class, homeroom_url  # noqa: F401 -- a fixture
from transcripts.demo import school_demo_seed
from transcripts.document.parsing import year_record_parse
from transcripts.models import Retake, StudentYear, SubjectTermScores, YearRecord
from transcripts.pdf.render import _secondary_context
from transcripts.records.services import year_records_create
from transcripts.results import class_results_store
from transcripts.selectors import student_year_retakes
from transcripts.services import Cell, CellError, assessment_cell_save
from transcripts.yearclose import class_summer_close, class_year_close, summer_cell_save


def _sql(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _refused(sql: str, params=()) -> None:
    with pytest.raises(DatabaseError, match="closed book"), transaction.atomic():
        _sql(sql, params)


@pytest.fixture
def approved(principal, school, complete_class):  # noqa: F811 -- the fixture imported above
    """8A approved: the first student is re-assessed in Toán, the second re-trains in the summer."""
    school_class, enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    return SchoolClass.objects.get(pk=school_class.pk), enrolments


def _august(homeroom_teacher, principal, school, school_class, enrolments) -> SchoolClass:
    for enrolment_id, field, raw in (
        (enrolments[0].pk, "retake:toan", "6,5"),
        (enrolments[1].pk, "conduct_after_training", "Đ"),
    ):
        summer_cell_save(
            actor=homeroom_teacher,
            school=school,
            school_class=school_class,
            enrolment_id=enrolment_id,
            field=field,
            raw=raw,
        )
    class_summer_close(actor=principal, school=school, school_class=school_class)
    return SchoolClass.objects.get(pk=school_class.pk)


# --- Finding 1: the August decision survives a recomputation ---------------------------------


def test_results_computed_again_after_the_august_close_are_refused_and_the_records_say_promoted(
    client_as, homeroom_teacher, principal, school, approved
):
    school_class, enrolments = approved
    school_class = _august(homeroom_teacher, principal, school, school_class, enrolments)
    before = {e.pk: StudentYear.objects.get(enrolment=e).results for e in enrolments}

    response = client_as(homeroom_teacher).post(homeroom_url(school, school_class, "ket-qua/"), follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        "Hiệu trưởng đã phê duyệt kết quả cả năm của lớp này: kết quả là chính thức và không được tính lại."
    ]

    connection.set_tenant(school)
    after = {e.pk: StudentYear.objects.get(enrolment=e).results for e in enrolments}
    assert after == before
    assert after[enrolments[0].pk]["after_summer"]["outcome"] == "promoted"

    year_records_create(actor=homeroom_teacher, school=school, school_class=school_class)

    parts = {
        r.enrolment_id: year_record_parse(bytes(r.xml)).part
        for r in YearRecord.objects.filter(enrolment__in=enrolments[:2])
    }
    # Re-assessed and re-trained, both passed in August: promoted, with the June outcome kept.
    assert [(parts[e.pk].promoted, parts[e.pk].outcome) for e in enrolments[:2]] == [
        (True, "reassessment"),
        (True, "summer_training"),
    ]


def test_the_results_of_an_approved_year_are_not_computed_again(principal, school, approved):
    school_class, _enrolments = approved
    with pytest.raises(ValidationError) as refused:
        class_results_store(school_class=school_class)
    assert refused.value.error_list[0].code == "class_closed"


def test_a_cell_of_an_approved_class_is_refused_with_its_reason(subject_teacher, school, approved):
    school_class, enrolments = approved
    with pytest.raises(CellError) as refused:
        assessment_cell_save(
            actor=subject_teacher,
            school=school,
            school_class=school_class,
            cell=Cell(enrolment_id=enrolments[2].pk, field="mid", subject_id=_subject("toan").pk, term=1),
            raw="9",
        )
    assert refused.value.error_list[0].code == "class_closed"


def _subject(code: str) -> Subject:
    return Subject.objects.get(code=code)


# --- The database refuses by itself -------------------------------------------------------------


def test_the_database_refuses_scores_of_an_approved_class(school, approved):
    _school_class, enrolments = approved
    toan, hdtn = _subject("toan"), _subject("hdtn")
    row = SubjectTermScores.objects.filter(enrolment=enrolments[2], subject=toan, term=1).get()
    _refused("UPDATE transcripts_subjecttermscores SET mid = 9 WHERE id = %s", [row.pk])
    _refused("DELETE FROM transcripts_subjecttermscores WHERE id = %s", [row.pk])
    _refused(
        "INSERT INTO transcripts_subjecttermscores"
        " (enrolment_id, subject_id, term, level, comment, updated_at) VALUES (%s, %s, 1, '', '', now())",
        [enrolments[2].pk, hdtn.pk],
    )
    # A row moved from an approved class's student to another student is refused on both sides.
    _refused(
        "UPDATE transcripts_subjecttermscores SET enrolment_id = %s WHERE id = %s", [enrolments[3].pk, row.pk]
    )
    assert SubjectTermScores.objects.get(pk=row.pk).mid == row.mid


@pytest.mark.parametrize(
    "table, columns",
    [
        (
            "transcripts_primarysubjectassessment",
            "(enrolment_id, subject_id, period, level, comment, updated_at)",
        ),
        ("transcripts_qualityassessment", "(enrolment_id, code, period, level, comment, updated_at)"),
    ],
)
def test_the_database_refuses_primary_levels_and_qualities_for_an_approved_class(
    school, approved, table, columns
):
    _school_class, enrolments = approved
    second = _subject("toan").pk if "subject" in columns else "trung_thuc"
    _refused(
        f"INSERT INTO {table} {columns} VALUES (%s, %s, 'end2', 'T', '', now())",  # noqa: S608 -- fixed names
        [enrolments[0].pk, second],
    )


def test_the_database_refuses_a_changed_year_result_but_admits_the_august_decision(
    homeroom_teacher, principal, school, approved
):
    school_class, enrolments = approved
    year = StudentYear.objects.get(enrolment=enrolments[2])
    _refused("UPDATE transcripts_studentyear SET conduct_year = 'T' WHERE id = %s", [year.pk])
    _refused("UPDATE transcripts_studentyear SET homeroom_comment = 'x' WHERE id = %s", [year.pk])
    _refused("UPDATE transcripts_studentyear SET results = '{}'::jsonb WHERE id = %s", [year.pk])
    _refused("DELETE FROM transcripts_studentyear WHERE id = %s", [year.pk])
    # Re-training conduct only for a student sent to re-training.
    _refused("UPDATE transcripts_studentyear SET conduct_after_training = 'T' WHERE id = %s", [year.pk])
    # The August window admits the decision (what class_summer_close writes) ...
    trained = StudentYear.objects.get(enrolment=enrolments[1])
    with transaction.atomic():
        _sql(
            "UPDATE transcripts_studentyear SET conduct_after_training = 'Đ',"
            ' results = results || \'{"after_summer": {"outcome": "promoted"}}\'::jsonb WHERE id = %s',
            [trained.pk],
        )
    # ... and the August close shuts it.
    school_class = _august(homeroom_teacher, principal, school, school_class, enrolments)
    _refused(
        "UPDATE transcripts_studentyear SET results = results - 'after_summer' WHERE id = %s", [trained.pk]
    )
    _refused("UPDATE transcripts_studentyear SET conduct_after_training = 'K' WHERE id = %s", [trained.pk])


def test_the_database_admits_re_assessment_only_in_august_and_only_in_the_subjects_the_rules_name(
    homeroom_teacher,
    principal,
    school,
    complete_class,  # noqa: F811
):
    school_class, enrolments = complete_class
    toan, van = _subject("toan"), _subject("ngu_van")
    insert = (
        "INSERT INTO transcripts_retake (enrolment_id, subject_id, score, level, updated_at)"
        " VALUES (%s, %s, 6, '', now())"
    )
    _refused(insert, [enrolments[0].pk, toan.pk])  # before the approval
    class_year_close(actor=principal, school=school, school_class=school_class)
    _refused(insert, [enrolments[0].pk, van.pk])  # a subject the student passed
    _refused(insert, [enrolments[2].pk, toan.pk])  # a promoted student
    with transaction.atomic():
        _sql(insert, [enrolments[0].pk, toan.pk])
    retake = Retake.objects.get(enrolment=enrolments[0], subject=toan)
    class_summer_close(
        actor=principal, school=school, school_class=SchoolClass.objects.get(pk=school_class.pk)
    )
    _refused("UPDATE transcripts_retake SET score = 9 WHERE id = %s", [retake.pk])
    _refused("DELETE FROM transcripts_retake WHERE id = %s", [retake.pk])


def test_the_database_refuses_changes_to_an_approved_class_its_students_and_its_teachers(
    colleague, school, approved
):
    school_class, enrolments = approved
    assignment = TeachingAssignment.objects.filter(school_class=school_class).first()
    _refused("UPDATE schools_schoolclass SET closed_at = NULL WHERE id = %s", [school_class.pk])
    _refused(
        "UPDATE schools_schoolclass SET homeroom_teacher_id = %s WHERE id = %s",
        [colleague.pk, school_class.pk],
    )
    _refused("UPDATE schools_schoolclass SET name = '8Z' WHERE id = %s", [school_class.pk])
    _refused("DELETE FROM schools_schoolclass WHERE id = %s", [school_class.pk])
    _refused("UPDATE schools_enrolment SET status = 'left' WHERE id = %s", [enrolments[0].pk])
    _refused("DELETE FROM schools_enrolment WHERE id = %s", [enrolments[0].pk])
    other = Student.objects.exclude(enrolments__school_class=school_class).first()
    _refused(
        "INSERT INTO schools_enrolment (student_id, school_class_id, number, status, enrolled_on, note)"
        " VALUES (%s, %s, 99, 'active', '2025-09-05', '')",
        [other.pk, school_class.pk],
    )
    _refused(
        "UPDATE schools_teachingassignment SET teacher_id = %s WHERE id = %s", [colleague.pk, assignment.pk]
    )
    _refused(
        "INSERT INTO schools_teachingassignment (school_class_id, subject_id, teacher_id)"
        " VALUES (%s, %s, %s)",
        [school_class.pk, _subject("hdtn").pk, colleague.pk],
    )
    _refused("DELETE FROM schools_teachingassignment WHERE id = %s", [assignment.pk])


def test_the_august_close_is_final_and_needs_the_approval_first(school, secondary_class):
    _refused("UPDATE schools_schoolclass SET summer_closed_at = now() WHERE id = %s", [secondary_class.pk])
    _sql(
        "UPDATE schools_schoolclass SET closed_at = now(), summer_closed_at = now() WHERE id = %s",
        [secondary_class.pk],
    )
    _refused("UPDATE schools_schoolclass SET summer_closed_at = NULL WHERE id = %s", [secondary_class.pk])


# --- Finding 3: a score save cannot race the approval ------------------------------------------


@pytest.fixture
def committed_class(django_db_blocker):
    """A class with one student and a term I conduct to enter, committed (two connections see it)."""
    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOLS["school"][0])
        teacher = User.objects.get(username="homeroom_teacher")
        try:
            with school:
                year = SchoolYear.objects.get(is_current=True)
                school_class = class_create(
                    school_year=year,
                    name=f"9R-{tag}",
                    grade=9,
                    levels=school.levels,
                    homeroom_teacher=teacher,
                )
                student = student_make(f"RACE-{tag}", "Đinh Văn Đua", 1, dt.date(2011, 5, 5))
                enrolment = student_enrol(
                    student=student, school_class=school_class, enrolled_on=year.starts_on, number=1
                )
            connection.set_schema_to_public()
            yield school, teacher, school_class, enrolment
        finally:
            with school, transaction.atomic():
                # The class ends approved, which the database protects: lift the triggers for the
                # clean-up of this test's own rows only.
                _sql("SET LOCAL session_replication_role = replica")
                StudentYear.objects.filter(enrolment__student__student_code=f"RACE-{tag}").delete()
                Enrolment.objects.filter(student__student_code=f"RACE-{tag}").delete()
                Student.objects.filter(student_code=f"RACE-{tag}").delete()
                SchoolClass.objects.filter(name=f"9R-{tag}").delete()
            connection.set_schema_to_public()


def test_a_save_that_read_the_class_before_the_approval_cannot_commit_after_it(
    committed_class, django_db_blocker
):
    school, teacher, stale_class, enrolment = committed_class
    assert stale_class.closed_at is None  # what the grade book read before the approval

    def save():
        return assessment_cell_save(
            actor=teacher,
            school=school,
            school_class=stale_class,
            cell=Cell(enrolment_id=enrolment.pk, field="conduct_term1"),
            raw="T",
        )

    with django_db_blocker.unblock():
        outcome = race_the_approval(school, stale_class.pk, save)
        assert outcome.waited, f"the save did not wait for the approval: {outcome}"
        assert isinstance(outcome.error, CellError), outcome
        assert outcome.error.error_list[0].code == "class_closed"
        with school:
            assert not StudentYear.objects.filter(enrolment_id=enrolment.pk, conduct_term1="T").exists()
        connection.set_schema_to_public()


# --- The demo's August flow (issue 9: what it must show) ----------------------------------------


def test_the_demo_august_flow_prints_promoted_for_the_students_who_passed(db, client_as):
    """make run's THCS 6A1: approved, re-take scores entered, the August close, results computed
    again by the homeroom teacher (refused), records created: every student who passed in August
    is printed 'Được lên lớp' (Lên lớp 7) and none 'Ở lại lớp 6'."""

    school, users = demo_school(
        "demo-aug", SchoolLevel.LOWER_SECONDARY, "thcs", teachers=("gvcn", "gvbm", "hieutruong")
    )
    principal = users["thcs.hieutruong"]
    RoleAssignment.objects.create(user=principal, role=Role.PRINCIPAL, school=school)
    teacher = users["thcs.gvcn"]
    RoleAssignment.objects.create(user=teacher, role=Role.HOMEROOM_TEACHER, school=school)
    school_demo_seed(school, users, students_per_class=40)
    with school:
        school_class = SchoolClass.objects.get(name="6A1")
        class_year_close(actor=principal, school=school, school_class=school_class)
        school_class = SchoolClass.objects.get(pk=school_class.pk)
        summer = {
            y.enrolment_id: y.results
            for y in StudentYear.objects.filter(
                enrolment__school_class=school_class,
                results__outcome__in=["reassessment", "summer_training"],
            )
        }
        assert summer, "the demo class sends nobody to August: the flow is not exercised"

        for enrolment_id, results in summer.items():
            if results["outcome"] == "summer_training":
                entries = [("conduct_after_training", "Đ")]
            else:
                year = StudentYear.objects.get(enrolment_id=enrolment_id)
                entries = [
                    (f"retake:{code}", "Đ" if results["subjects"][code]["year"] in ("Đ", "CĐ") else "6,5")
                    for code in student_year_retakes(year)
                ]
            for field, raw in entries:
                summer_cell_save(
                    actor=teacher,
                    school=school,
                    school_class=school_class,
                    enrolment_id=enrolment_id,
                    field=field,
                    raw=raw,
                )
        class_summer_close(actor=principal, school=school, school_class=school_class)
        decided = {
            e: StudentYear.objects.get(enrolment_id=e).results["after_summer"]["outcome"] for e in summer
        }
    refused = client_as(teacher).post(homeroom_url(school, school_class, "ket-qua/"))
    assert refused.status_code == 302
    with school:
        assert {
            e: StudentYear.objects.get(enrolment_id=e).results["after_summer"]["outcome"] for e in summer
        } == decided
        year_records_create(actor=teacher, school=school, school_class=school_class)
        printed = {}
        for record in YearRecord.objects.filter(enrolment_id__in=list(summer)):
            document = year_record_parse(bytes(record.xml))
            printed[record.enrolment_id] = _secondary_context(document, document.part)["promotion"]
    passed = [e for e, outcome in decided.items() if outcome == "promoted"]
    assert passed and len(printed) == len(summer)
    for enrolment_id in passed:
        assert printed[enrolment_id]["after"] == "Lên lớp 7", printed[enrolment_id]
        assert printed[enrolment_id]["repeat"] == ""
