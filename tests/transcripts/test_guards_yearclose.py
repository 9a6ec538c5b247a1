# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Every refusal of the year close and the August re-assessment, met alone, with its reason
(issue 9, finding 14): who approves, approving twice, missing data; who enters August results,
when, for whom, which subject; who closes August, and only once after the approval.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import override

from portal.models import AuditEntry
from schools.models import SchoolClass
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from transcripts.models import Retake, StudentYear
from transcripts.services import CellError
from transcripts.yearclose import class_summer_close, class_year_close, summer_cell_save


def refused(error_type, call) -> str:
    with override("en"), pytest.raises(error_type) as caught:
        call()
    error = caught.value
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


@pytest.fixture
def approved(principal, school, complete_class):
    """8A approved: student 1 re-assessed in Toán, student 2 sent to re-training, 3 and 4 promoted."""
    school_class, enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    return SchoolClass.objects.get(pk=school_class.pk), enrolments


def summer(actor, school, school_class, enrolment, field, raw):
    return summer_cell_save(
        actor=actor, school=school, school_class=school_class, enrolment_id=enrolment.pk, field=field, raw=raw
    )


# --- June: the approval ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona_name", ["homeroom_teacher", "school_admin", "subject_teacher"])
def test_only_the_principal_or_a_vice_principal_approves_the_year(
    persona_name, persona, school, complete_class
):
    school_class, _ = complete_class
    reason = refused(
        PermissionDenied,
        lambda: class_year_close(actor=persona(persona_name), school=school, school_class=school_class),
    )
    assert reason == "Only the principal or a vice-principal approves the year."
    assert SchoolClass.objects.get(pk=school_class.pk).closed_at is None


def test_a_vice_principal_approves_the_year(vice_principal, school, complete_class):
    school_class, enrolments = complete_class
    assert class_year_close(actor=vice_principal, school=school, school_class=school_class) == len(enrolments)
    assert SchoolClass.objects.get(pk=school_class.pk).closed_by_id == vice_principal.pk


def test_a_year_is_approved_once(principal, school, approved):
    school_class, _ = approved
    reason = refused(
        ValidationError, lambda: class_year_close(actor=principal, school=school, school_class=school_class)
    )
    assert reason == "This class's year is already approved."


def test_a_year_with_missing_data_names_the_first_student_and_what_is_missing(
    principal, school, complete_class
):
    school_class, enrolments = complete_class
    StudentYear.objects.filter(enrolment=enrolments[3]).delete()
    reason = refused(
        ValidationError, lambda: class_year_close(actor=principal, school=school, school_class=school_class)
    )
    assert reason.startswith(f"1 students still miss data, e.g. {enrolments[3].student.full_name}: ")
    assert SchoolClass.objects.get(pk=school_class.pk).closed_at is None


# --- August: entering the re-assessment ---------------------------------------------------------


def test_only_the_homeroom_teacher_enters_august_results(subject_teacher, principal, school, approved):
    school_class, enrolments = approved
    for actor in (subject_teacher, principal):
        reason = refused(
            PermissionDenied,
            lambda a=actor: summer(a, school, school_class, enrolments[0], "retake:toan", "6"),
        )
        assert reason == "Only the class's homeroom teacher enters this."


def test_august_results_wait_for_the_approval(homeroom_teacher, school, complete_class):
    school_class, enrolments = complete_class
    with override("en"), pytest.raises(CellError) as caught:
        summer(homeroom_teacher, school, school_class, enrolments[0], "retake:toan", "6")
    assert caught.value.code == "not_summer"
    assert caught.value.messages == [
        "Re-assessment results are entered after the year is approved, until August's close."
    ]


def test_august_results_stop_at_the_august_close(homeroom_teacher, principal, school, approved):
    school_class, enrolments = approved
    class_summer_close(actor=principal, school=school, school_class=school_class)
    with pytest.raises(CellError) as caught:
        summer(
            homeroom_teacher,
            school,
            SchoolClass.objects.get(pk=school_class.pk),
            enrolments[0],
            "retake:toan",
            "6",
        )
    assert caught.value.code == "not_summer"


def test_a_promoted_student_is_not_re_assessed(homeroom_teacher, school, approved):
    school_class, enrolments = approved
    reason = refused(
        CellError, lambda: summer(homeroom_teacher, school, school_class, enrolments[2], "retake:toan", "6")
    )
    assert reason == "This student is not re-assessed this summer."


def test_a_student_of_another_class_is_not_re_assessed_here(
    homeroom_teacher, school, approved, primary_class
):
    school_class, _ = approved
    from schools.models import Enrolment

    stranger = Enrolment.objects.filter(school_class=primary_class).first()
    reason = refused(
        CellError, lambda: summer(homeroom_teacher, school, school_class, stranger, "retake:toan", "6")
    )
    assert reason == "This student is not re-assessed this summer."


def test_re_training_conduct_is_only_for_a_student_sent_to_re_training(homeroom_teacher, school, approved):
    school_class, enrolments = approved
    reason = refused(
        CellError,
        lambda: summer(homeroom_teacher, school, school_class, enrolments[0], "conduct_after_training", "Đ"),
    )
    assert reason == "This student was not sent to summer re-training."
    saved = summer(homeroom_teacher, school, school_class, enrolments[1], "conduct_after_training", "k")
    assert (saved.value, saved.changed) == ("K", True)
    assert StudentYear.objects.get(enrolment=enrolments[1]).conduct_after_training == "K"


@pytest.mark.parametrize("field", ["retake:ngu_van", "toan", "retake:", "score:toan"])
def test_a_subject_the_student_passed_is_not_re_assessed(field, homeroom_teacher, school, approved):
    school_class, enrolments = approved
    reason = refused(
        CellError, lambda: summer(homeroom_teacher, school, school_class, enrolments[0], field, "6")
    )
    assert reason == "This subject is not re-assessed for this student."


def test_the_re_training_student_has_no_subject_to_re_take(homeroom_teacher, school, approved):
    school_class, enrolments = approved
    reason = refused(
        CellError, lambda: summer(homeroom_teacher, school, school_class, enrolments[1], "retake:toan", "6")
    )
    assert reason == "This subject is not re-assessed for this student."


def test_a_re_take_score_is_stored_and_can_be_cleared(homeroom_teacher, school, approved):
    school_class, enrolments = approved
    saved = summer(homeroom_teacher, school, school_class, enrolments[0], "retake:toan", "6,5")
    assert (saved.value, saved.changed) == ("6,5", True)
    again = summer(homeroom_teacher, school, school_class, enrolments[0], "retake:toan", "6.5")
    assert not again.changed
    from transcripts.models import AssessmentChange

    assert AssessmentChange.objects.filter(enrolment=enrolments[0], table="retake").count() == 1
    cleared = summer(homeroom_teacher, school, school_class, enrolments[0], "retake:toan", "")
    assert cleared.value == "" and Retake.objects.get(enrolment=enrolments[0]).score is None


# --- August: the close ------------------------------------------------------------------------------


def test_only_the_principal_or_a_vice_principal_closes_august(homeroom_teacher, school, approved):
    school_class, _ = approved
    reason = refused(
        PermissionDenied,
        lambda: class_summer_close(actor=homeroom_teacher, school=school, school_class=school_class),
    )
    assert reason == "Only the principal or a vice-principal approves the year."
    assert SchoolClass.objects.get(pk=school_class.pk).summer_closed_at is None


def test_august_cannot_be_closed_before_the_approval(principal, school, complete_class):
    school_class, _ = complete_class
    reason = refused(
        ValidationError, lambda: class_summer_close(actor=principal, school=school, school_class=school_class)
    )
    assert reason == "The re-assessment can be closed once, after the year is approved."


def test_august_is_closed_once(principal, school, approved):
    school_class, _ = approved
    class_summer_close(actor=principal, school=school, school_class=school_class)
    reason = refused(
        ValidationError, lambda: class_summer_close(actor=principal, school=school, school_class=school_class)
    )
    assert reason == "The re-assessment can be closed once, after the year is approved."


def test_the_august_close_decides_only_the_students_sent_to_august(
    homeroom_teacher, principal, school, approved
):
    school_class, enrolments = approved
    summer(homeroom_teacher, school, school_class, enrolments[0], "retake:toan", "7")
    summer(homeroom_teacher, school, school_class, enrolments[1], "conduct_after_training", "T")
    assert class_summer_close(actor=principal, school=school, school_class=school_class) == 2
    years = [StudentYear.objects.get(enrolment=e).results for e in enrolments]
    assert years[0]["after_summer"]["outcome"] == "promoted" and years[0]["after_summer"]["retaken"] == [
        "toan"
    ]
    assert years[1]["after_summer"]["conduct_year"] == "T"
    assert "after_summer" not in years[2] and "after_summer" not in years[3]
    from django.db import connection

    connection.set_schema_to_public()
    entry = AuditEntry.objects.get(action="class_summer_closed", object_id=str(school_class.pk))
    assert entry.actor == principal


def test_without_a_re_take_the_student_repeats(principal, school, approved):
    school_class, enrolments = approved
    class_summer_close(actor=principal, school=school, school_class=school_class)
    after = StudentYear.objects.get(enrolment=enrolments[0]).results["after_summer"]
    assert after["outcome"] == "repeat" and after["retaken"] == []


def test_a_subject_passed_with_exactly_five_is_not_re_assessed(
    homeroom_teacher, principal, school, complete_class
):
    """5.0 is a pass (TT22: a subject is failed below 5.0): only the failed subject is re-taken."""
    from decimal import Decimal

    from transcripts.models import SubjectTermScores

    school_class, enrolments = complete_class
    five = Decimal("5.0")
    SubjectTermScores.objects.filter(enrolment=enrolments[0], subject__code="ngu_van").update(
        regular_1=five, regular_2=five, regular_3=five, regular_4=five, mid=five, end=five
    )
    class_year_close(actor=principal, school=school, school_class=school_class)
    school_class = SchoolClass.objects.get(pk=school_class.pk)
    results = StudentYear.objects.get(enrolment=enrolments[0]).results
    assert results["outcome"] == "reassessment" and Decimal(results["subjects"]["ngu_van"]["year"]) == five
    reason = refused(
        CellError,
        lambda: summer(homeroom_teacher, school, school_class, enrolments[0], "retake:ngu_van", "6"),
    )
    assert reason == "This subject is not re-assessed for this student."
    assert summer(homeroom_teacher, school, school_class, enrolments[0], "retake:toan", "6").changed


def test_the_august_close_decides_every_summer_student_whatever_their_place(
    homeroom_teacher, principal, school, complete_class
):
    """A promoted student listed first does not stop the August close before the others."""
    from decimal import Decimal

    from transcripts.models import SubjectTermScores

    school_class, enrolments = complete_class
    seven, two = Decimal(7), Decimal(2)
    toan = SubjectTermScores.objects.filter(subject__code="toan")
    scores = ("regular_1", "regular_2", "regular_3", "regular_4", "mid", "end")
    toan.filter(enrolment=enrolments[0]).update(**dict.fromkeys(scores, seven))
    toan.filter(enrolment=enrolments[3]).update(**dict.fromkeys(scores, two))
    class_year_close(actor=principal, school=school, school_class=school_class)
    assert StudentYear.objects.get(enrolment=enrolments[0]).results["outcome"] == "promoted"
    assert class_summer_close(actor=principal, school=school, school_class=school_class) == 2
    assert "after_summer" in StudentYear.objects.get(enrolment=enrolments[3]).results
