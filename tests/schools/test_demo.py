"""The demo school data `make run` shows: classes, valid identities, a full year of assessments."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import transaction

from portal.choices import SchoolLevel
from portal.models import User
from portal.provisioning import SchoolSpec, school_provision
from schools.choices import SubjectKind
from schools.demo import FULL_CLASS, MISSING_IDS
from schools.identity import personal_id_check
from schools.models import CurriculumEntry, Enrolment, SchoolClass, Student, TeachingAssignment
from transcripts.choices import GENERAL_COMPETENCIES, QUALITIES, SPECIFIC_COMPETENCIES
from transcripts.demo import school_demo_seed
from transcripts.models import (
    AssessmentChange,
    PrimarySubjectAssessment,
    QualityAssessment,
    StudentYear,
    SubjectTermScores,
)
from transcripts.services import REGULAR_FIELDS


def demo_school(code: str, level: str, prefix: str, teachers=("gvcn", "gvbm")):
    school, _ = school_provision(
        actor=None, spec=SchoolSpec(code=code, name=f"Trường Thử {code}", levels=(level,)), division=None
    )
    users = {
        f"{prefix}.{role}": User.objects.create_user(
            username=f"{prefix}.{role}", password=None, full_name=f"Giáo viên {role}", email=f"{role}@x.test"
        )
        for role in teachers
    }
    return school, users


@pytest.fixture
def lower_secondary(db):
    """A THCS seeded at its realistic size, then seeded again (which must change nothing)."""
    school, users = demo_school("demo-x", SchoolLevel.LOWER_SECONDARY, "thcs")
    school_demo_seed(school, users)
    school_demo_seed(school, users)
    with school:
        yield school, users


def test_a_lower_secondary_school_gets_its_two_classes_one_of_them_full(lower_secondary):
    _school, users = lower_secondary

    classes = list(SchoolClass.objects.order_by("grade"))
    assert [(c.name, c.grade, c.ruleset) for c in classes] == [("6A1", 6, "tt22"), ("9A1", 9, "tt22")]
    assert classes[0].homeroom_teacher == users["thcs.gvcn"]
    assert classes[1].homeroom_teacher is None
    sizes = [Enrolment.objects.filter(school_class=c).count() for c in classes]
    assert sizes[0] == FULL_CLASS
    assert 30 <= sizes[1] <= 40
    assert Student.objects.count() == sum(sizes)


def test_the_subject_teacher_teaches_toan_everywhere_and_the_homeroom_teacher_ngu_van_in_their_class(
    lower_secondary,
):
    taught = {
        (a.school_class.name, a.subject.code, a.teacher.username) for a in TeachingAssignment.objects.all()
    }
    assert taught == {
        ("6A1", "toan", "thcs.gvbm"),
        ("9A1", "toan", "thcs.gvbm"),
        ("6A1", "ngu_van", "thcs.gvcn"),
    }


def test_every_student_has_a_valid_personal_id_or_a_temporary_code(lower_secondary):
    students = list(Student.objects.all())

    temporary = [s for s in students if s.personal_id is None]
    assert len(temporary) == MISSING_IDS
    assert all(s.temporary_code.startswith("TAM-") for s in temporary)
    for student in students:
        if student.personal_id is not None:
            assert personal_id_check(
                student.personal_id, date_of_birth=student.date_of_birth, sex=student.sex
            )
            assert student.personal_id.startswith("010")
    assert len({s.student_code for s in students}) == len(students)
    assert {s.date_of_birth.year for s in students} == {2014, 2011}  # grades 6 and 9 in 2025-2026
    assert Counter(s.ethnicity for s in students).most_common(1)[0][0] == "Kinh"


def test_every_scored_subject_has_exactly_its_regular_scores_mid_and_end_in_both_terms(lower_secondary):
    entries = {(e.grade, e.subject_id): e for e in CurriculumEntry.objects.all()}
    enrolments = Enrolment.objects.select_related("school_class").count()

    rows = list(SubjectTermScores.objects.select_related("enrolment__school_class"))
    assert len(rows) == enrolments * 12 * 2  # THCS: 12 subjects, two terms
    for row in rows:
        entry = entries[(row.enrolment.school_class.grade, row.subject_id)]
        if entry.kind == SubjectKind.SCORED:
            scores = [getattr(row, name) for name in REGULAR_FIELDS]
            assert all(s is not None for s in scores[: entry.regular_count]), row
            assert all(s is None for s in scores[entry.regular_count :]), row
            assert row.mid is not None and row.end is not None and row.level == ""
            assert all(
                s == round(s, 1) and 0 <= s <= 10 for s in [*scores[: entry.regular_count], row.mid, row.end]
            )
        else:
            assert row.level in ("Đ", "CĐ") and row.mid is None
    assert not AssessmentChange.objects.exists()  # initial data is not an edit


def test_every_student_has_a_year_record_and_one_is_over_the_45_absence_limit(lower_secondary):
    years = list(StudentYear.objects.all())

    assert len(years) == Enrolment.objects.count()
    assert [y.absences for y in years if y.absences > 45] == [50]
    assert all(y.conduct_term1 and y.conduct_term2 and y.conduct_year and y.homeroom_comment for y in years)
    assert Counter(y.conduct_year for y in years).most_common(1)[0][0] in ("T", "K")


def test_a_primary_school_gets_levels_tests_and_qualities_for_every_period(db):
    school, users = demo_school("demo-p", SchoolLevel.PRIMARY, "th")

    school_demo_seed(school, users, students_per_class=5)

    with school:
        assert [c.name for c in SchoolClass.objects.order_by("grade", "name")] == ["1A", "3A", "5A", "5B"]
        assert {(a.school_class.name, a.subject.code) for a in TeachingAssignment.objects.all()} == {
            ("3A", "ngoai_ngu_1"),
            ("5A", "ngoai_ngu_1"),
            ("5B", "ngoai_ngu_1"),
        }
        entries = {(e.grade, e.subject_id): e for e in CurriculumEntry.objects.all()}
        rows = list(PrimarySubjectAssessment.objects.select_related("enrolment__school_class"))
        expected = sum(len([e for e in entries if e[0] == g]) * 5 * 4 for g in (1, 3, 5, 5))
        assert len(rows) == expected
        for row in rows:
            entry = entries[(row.enrolment.school_class.grade, row.subject_id)]
            tested = entry.has_test and (row.period in ("end1", "end2") or entry.has_mid_test)
            assert (row.test_score is not None) == tested, row
            assert row.level in ("T", "H", "C") and row.comment
        codes = len(QUALITIES) + len(GENERAL_COMPETENCIES) + len(SPECIFIC_COMPETENCIES)
        assert QualityAssessment.objects.count() == 20 * codes * 2
        assert set(QualityAssessment.objects.values_list("period", flat=True)) == {"end1", "end2"}
        assert StudentYear.objects.count() == 20


def test_the_visiting_teacher_teaches_toan_in_a_continuing_education_centre(db):
    school, users = demo_school("demo-g", SchoolLevel.CONTINUING, "gv", teachers=("thinhgiang",))
    users["gdtx.gvcn"] = User.objects.create_user(username="gdtx.gvcn", password=None, full_name="GVCN")

    school_demo_seed(school, users, students_per_class=3)

    with school:
        assert [(c.name, c.ruleset) for c in SchoolClass.objects.order_by("grade")] == [
            ("10B", "tt43"),
            ("12B", "tt43"),
        ]
        assert {
            (a.school_class.name, a.subject.code, a.teacher.username)
            for a in TeachingAssignment.objects.all()
        } == {
            ("10B", "toan", "gv.thinhgiang"),
            ("12B", "toan", "gv.thinhgiang"),
            ("10B", "ngu_van", "gdtx.gvcn"),
        }


def test_the_same_school_gets_the_same_students_and_scores_every_time(db):
    school, users = demo_school("demo-d", SchoolLevel.UPPER_SECONDARY, "thpt")

    def seeded_data():
        school_demo_seed(school, users, students_per_class=4)
        with school:
            students = list(Student.objects.order_by("student_code").values_list("full_name", "personal_id"))
            scores = list(
                SubjectTermScores.objects.order_by(
                    "enrolment__student__student_code", "subject__code", "term"
                ).values_list("regular_1", "mid", "end", "level")
            )
        return students, scores

    with transaction.atomic():
        first = seeded_data()
        transaction.set_rollback(True)
    assert first == seeded_data()
