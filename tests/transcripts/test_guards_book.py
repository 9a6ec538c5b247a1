"""Every refusal of a grade-book cell save and of a term lock, met alone, with its reason or code
(issue 9, finding 14): a student of another class, a subject not taught, not this teacher's cell,
an unknown term, period or field, a test the subject does not have, a closed book, a locked term
(homeroom and quality cells too), and each value parser's boundary.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.translation import override

from portal.models import AuditEntry
from schools.models import Enrolment, SchoolClass, Subject, Term
from transcripts.models import AssessmentChange, QualityAssessment, StudentYear, SubjectTermScores
from transcripts.services import (
    Cell,
    CellError,
    assessment_cell_save,
    parse_absences,
    parse_comment,
    parse_comment_level,
    parse_homeroom_comment,
    parse_primary_level,
    parse_quality_level,
    parse_result_level,
    parse_score,
    parse_test_score,
    term_lock_set,
)


def refused(error_type, call) -> str:
    with override("en"), pytest.raises(error_type) as caught:
        call()
    error = caught.value
    return " ".join(error.messages) if hasattr(error, "messages") else str(error)


def subject(code: str) -> int:
    return Subject.objects.get(code=code).pk


def first(school_class) -> Enrolment:
    return Enrolment.objects.filter(school_class=school_class).order_by("number").first()


def save(actor, school, school_class, raw="7", **cell):
    cell.setdefault("enrolment_id", first(school_class).pk)
    return assessment_cell_save(
        actor=actor, school=school, school_class=school_class, cell=Cell(**cell), raw=raw
    )


def close(school_class) -> None:
    SchoolClass.objects.filter(pk=school_class.pk).update(closed_at=timezone.now())


def lock(school_class, term: int) -> None:
    Term.objects.filter(school_year_id=school_class.school_year_id, number=term).update(
        locked_at=timezone.now()
    )


# --- Whose cell, which cell ---------------------------------------------------------------------


def test_a_student_of_another_class_is_refused_in_a_cell_save(
    subject_teacher, school, secondary_class, primary_class
):
    other = first(primary_class)
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher,
            school,
            secondary_class,
            enrolment_id=other.pk,
            field="mid",
            subject_id=subject("toan"),
            term=1,
        ),
    )
    assert reason == "This student is not in this class."
    assert not SubjectTermScores.objects.filter(enrolment=other).exists()


def test_a_subject_not_taught_in_the_grade_is_refused(subject_teacher, school, secondary_class):
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher, school, secondary_class, field="level", subject_id=subject("dao_duc"), term=1
        ),
    )
    assert reason == "This subject is not taught in this grade."


def test_a_teacher_cannot_enter_a_colleagues_subject(subject_teacher, school, secondary_class):
    reason = refused(
        PermissionDenied,
        lambda: save(
            subject_teacher, school, secondary_class, field="mid", subject_id=subject("ngu_van"), term=1
        ),
    )
    assert reason == "You do not teach this subject to this class."


@pytest.mark.parametrize("term", [None, 0, 3])
def test_an_unknown_term_is_refused(term, subject_teacher, school, secondary_class):
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher, school, secondary_class, field="mid", subject_id=subject("toan"), term=term
        ),
    )
    assert reason == "Unknown term."


@pytest.mark.parametrize("field", ["regular_5", "level", "closed_at", ""])
def test_a_field_a_scored_subject_does_not_have_is_refused(field, subject_teacher, school, secondary_class):
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher, school, secondary_class, field=field, subject_id=subject("toan"), term=1
        ),
    )
    assert reason == "Unknown field."


def test_each_regular_score_of_the_subject_is_a_field(subject_teacher, school, secondary_class):
    saved = save(
        subject_teacher,
        school,
        secondary_class,
        field="regular_4",
        subject_id=subject("toan"),
        term=2,
        raw="6",
    )
    assert saved.value == "6,0" and saved.changed


def test_a_score_field_on_a_comment_subject_is_refused(subject_teacher, school, secondary_class):
    from schools.services import teaching_assignment_set

    teaching_assignment_set(
        school_class=secondary_class, subject=Subject.objects.get(code="gdtc"), teacher=subject_teacher
    )
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher, school, secondary_class, field="mid", subject_id=subject("gdtc"), term=1
        ),
    )
    assert reason == "Unknown field."
    saved = save(
        subject_teacher, school, secondary_class, field="level", subject_id=subject("gdtc"), term=1, raw="d"
    )
    assert saved.value == "Đ"
    assert saved.average is None  # a comment subject has no average


@pytest.mark.parametrize("period", [None, "", "mid3", "year"])
def test_an_unknown_primary_period_is_refused(period, subject_teacher, school, primary_class):
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher,
            school,
            primary_class,
            field="level",
            subject_id=subject("ngoai_ngu_1"),
            period=period,
        ),
    )
    assert reason == "Unknown assessment period."


def test_a_field_a_primary_subject_does_not_have_is_refused(subject_teacher, school, primary_class):
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher,
            school,
            primary_class,
            field="mid",
            subject_id=subject("ngoai_ngu_1"),
            period="end1",
        ),
    )
    assert reason == "Unknown field."


def test_a_mid_term_test_is_refused_for_a_subject_tested_only_at_the_end(
    subject_teacher, school, primary_class
):
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher,
            school,
            primary_class,
            field="test_score",
            subject_id=subject("ngoai_ngu_1"),
            period="mid1",
        ),
    )
    assert reason == "This subject has no periodic test at this point of the year."
    saved = save(
        subject_teacher,
        school,
        primary_class,
        field="test_score",
        subject_id=subject("ngoai_ngu_1"),
        period="end1",
        raw="9",
    )
    assert saved.value == "9"


def test_a_test_is_refused_for_a_subject_without_tests(homeroom_teacher, school, primary_class):
    reason = refused(
        CellError,
        lambda: save(
            homeroom_teacher,
            school,
            primary_class,
            field="test_score",
            subject_id=subject("dao_duc"),
            period="end2",
        ),
    )
    assert reason == "This subject has no periodic test at this point of the year."


def test_a_mid_term_test_is_accepted_where_the_subject_has_one(homeroom_teacher, school, primary_class):
    saved = save(
        homeroom_teacher,
        school,
        primary_class,
        field="test_score",
        subject_id=subject("toan"),
        period="mid2",
        raw="8",
    )
    assert saved.value == "8"


# --- Closed book, locked terms -----------------------------------------------------------------


def test_a_closed_book_refuses_a_subject_cell(subject_teacher, school, secondary_class):
    close(secondary_class)
    with override("en"), pytest.raises(CellError) as caught:
        save(subject_teacher, school, secondary_class, field="mid", subject_id=subject("toan"), term=1)
    assert caught.value.code == "class_closed"
    assert caught.value.messages == ["The principal has approved this class's year: its book is closed."]


def test_a_locked_term_refuses_a_subject_cell_and_names_the_term(subject_teacher, school, secondary_class):
    lock(secondary_class, 2)
    with override("en"), pytest.raises(CellError) as caught:
        save(subject_teacher, school, secondary_class, field="mid", subject_id=subject("toan"), term=2)
    assert (caught.value.code, caught.value.messages) == (
        "term_locked",
        ["Term II is locked. Ask the principal to unlock it."],
    )
    save(
        subject_teacher, school, secondary_class, field="mid", subject_id=subject("toan"), term=1
    )  # term I is open


def test_a_locked_first_term_is_named_term_i(subject_teacher, school, secondary_class):
    lock(secondary_class, 1)
    reason = refused(
        CellError,
        lambda: save(
            subject_teacher, school, secondary_class, field="mid", subject_id=subject("toan"), term=1
        ),
    )
    assert reason == "Term I is locked. Ask the principal to unlock it."


@pytest.mark.parametrize(
    ("field", "term"), [("conduct_term1", 1), ("conduct_year", 2), ("homeroom_comment", 2)]
)
def test_a_locked_term_refuses_the_homeroom_cells_of_that_term(
    field, term, homeroom_teacher, school, secondary_class
):
    lock(secondary_class, term)
    with pytest.raises(CellError) as caught:
        save(homeroom_teacher, school, secondary_class, field=field, raw="T" if "conduct" in field else "Tốt")
    assert caught.value.code == "term_locked"


def test_a_closed_book_refuses_the_homeroom_cells(homeroom_teacher, school, secondary_class):
    close(secondary_class)
    with pytest.raises(CellError) as caught:
        save(homeroom_teacher, school, secondary_class, field="absences", raw="2")
    assert caught.value.code == "class_closed"


def test_a_locked_term_refuses_the_quality_cells_of_its_period(homeroom_teacher, school, primary_class):
    lock(primary_class, 2)
    with pytest.raises(CellError) as caught:
        save(homeroom_teacher, school, primary_class, field="quality:yeu_nuoc:level", period="end2", raw="T")
    assert caught.value.code == "term_locked"
    saved = save(
        homeroom_teacher, school, primary_class, field="quality:yeu_nuoc:level", period="end1", raw="T"
    )
    assert saved.value == "T"
    assert QualityAssessment.objects.filter(period="end1", code="yeu_nuoc").exists()


def test_a_closed_book_refuses_the_quality_cells(homeroom_teacher, school, primary_class):
    close(primary_class)
    with pytest.raises(CellError) as caught:
        save(
            homeroom_teacher,
            school,
            primary_class,
            field="quality:yeu_nuoc:comment",
            period="end1",
            raw="Tốt",
        )
    assert caught.value.code == "class_closed"


# --- The homeroom teacher's cells -----------------------------------------------------------------


def test_only_the_homeroom_teacher_enters_the_homeroom_cells(subject_teacher, school, secondary_class):
    reason = refused(
        PermissionDenied,
        lambda: save(subject_teacher, school, secondary_class, field="conduct_term1", raw="T"),
    )
    assert reason == "Only the class's homeroom teacher enters this."


@pytest.mark.parametrize(
    "field",
    [
        "quality",
        "quality:yeu_nuoc",
        "quality:yeu_nuoc:level:x",
        "qualities:yeu_nuoc:level",
        "quality:khong_co:level",
        "quality:yeu_nuoc:score",
    ],
)
def test_an_unknown_quality_field_is_refused(field, homeroom_teacher, school, primary_class):
    with override("en"), pytest.raises(CellError) as caught:
        save(homeroom_teacher, school, primary_class, field=field, period="end1", raw="T")
    assert (caught.value.code, caught.value.messages) == ("unknown_field", ["Unknown field."])


def test_quality_cells_are_refused_in_a_secondary_class(homeroom_teacher, school, secondary_class):
    with pytest.raises(CellError) as caught:
        save(
            homeroom_teacher, school, secondary_class, field="quality:yeu_nuoc:level", period="end1", raw="T"
        )
    assert caught.value.code == "unknown_field"


@pytest.mark.parametrize("period", [None, "mid1", "mid2"])
def test_qualities_are_assessed_at_the_end_of_a_term_only(period, homeroom_teacher, school, primary_class):
    reason = refused(
        CellError,
        lambda: save(
            homeroom_teacher, school, primary_class, field="quality:yeu_nuoc:level", period=period, raw="T"
        ),
    )
    assert reason == "Unknown assessment period."


def test_each_homeroom_field_has_its_own_parser(homeroom_teacher, school, secondary_class):
    assert save(homeroom_teacher, school, secondary_class, field="absences", raw="").value == "0"
    assert save(homeroom_teacher, school, secondary_class, field="conduct_term2", raw="k").value == "K"
    long = "x" * 600  # longer than a subject's comment, within the homeroom comment's bound
    assert save(homeroom_teacher, school, secondary_class, field="homeroom_comment", raw=long).value == long
    with pytest.raises(CellError) as caught:
        save(homeroom_teacher, school, secondary_class, field="award_proposal", raw=long)
    assert caught.value.code == "too_long"
    year = StudentYear.objects.get(enrolment=first(secondary_class))
    assert (year.absences, year.conduct_term2) == (0, "K")


def test_an_unchanged_value_writes_no_audit_row(subject_teacher, school, secondary_class):
    first_save = save(
        subject_teacher, school, secondary_class, field="end", subject_id=subject("toan"), term=1, raw="8"
    )
    again = save(
        subject_teacher, school, secondary_class, field="end", subject_id=subject("toan"), term=1, raw="8,0"
    )
    assert first_save.changed and not again.changed
    assert AssessmentChange.objects.filter(field="end", enrolment=first(secondary_class)).count() == 1


def test_the_average_appears_once_the_row_is_complete(subject_teacher, school, secondary_class):
    toan = subject("toan")
    for field in ("regular_1", "regular_2", "regular_3", "regular_4", "mid"):
        assert (
            save(
                subject_teacher, school, secondary_class, field=field, subject_id=toan, term=1, raw="8"
            ).average
            == ""
        )
    assert (
        save(subject_teacher, school, secondary_class, field="end", subject_id=toan, term=1, raw="8").average
        == "8,0"
    )


# --- Terms ----------------------------------------------------------------------------------------


def test_only_the_principal_or_a_vice_principal_locks_a_term(homeroom_teacher, school, secondary_class):
    term = Term.objects.get(school_year_id=secondary_class.school_year_id, number=1)
    reason = refused(
        PermissionDenied, lambda: term_lock_set(actor=homeroom_teacher, school=school, term=term, locked=True)
    )
    assert reason == "Only the principal or a vice-principal locks and unlocks terms."


def test_locking_a_locked_term_changes_nothing(vice_principal, school, secondary_class):
    term = Term.objects.get(school_year_id=secondary_class.school_year_id, number=1)
    locked = term_lock_set(actor=vice_principal, school=school, term=term, locked=True)
    again = term_lock_set(actor=vice_principal, school=school, term=term, locked=True)
    assert again.locked_at == locked.locked_at and again.locked_by_id == vice_principal.pk
    unlocked = term_lock_set(actor=vice_principal, school=school, term=term, locked=False)
    assert (unlocked.locked_at, unlocked.locked_by) == (None, None)
    from django.db import connection

    connection.set_schema_to_public()
    assert (
        AuditEntry.objects.filter(action__in=["term_locked", "term_unlocked"], object_id=str(term.pk)).count()
        == 2
    )


# --- Parsers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"), [("0", "0"), ("10", "10"), ("7,5", "7.5"), (" 9.5 ", "9.5"), ("", None)]
)
def test_a_score_accepts_zero_to_ten_with_one_decimal(raw, value):
    parsed = parse_score(raw)
    assert (str(parsed) if parsed is not None else None) == value


@pytest.mark.parametrize("raw", ["10.1", "11", "-1", "7.25", "100", "٧", "７", "abc"])
def test_a_score_outside_zero_to_ten_or_not_ascii_is_refused(raw):
    with override("en"), pytest.raises(CellError) as caught:
        parse_score(raw)
    assert caught.value.messages == ["A score is a number from 0 to 10 with at most one decimal, e.g. 7,5."]


@pytest.mark.parametrize(
    ("raw", "ok"), [("1", True), ("10", True), ("0", False), ("11", False), ("5.5", False), ("", True)]
)
def test_a_test_score_is_a_whole_number_from_one_to_ten(raw, ok):
    if ok:
        assert parse_test_score(raw) == (int(raw) if raw else None)
    else:
        with override("en"), pytest.raises(CellError) as caught:
            parse_test_score(raw)
        assert caught.value.messages == ["A periodic test score is a whole number from 1 to 10."]


def test_the_level_parsers_accept_their_letters_and_aliases_only():
    assert (
        parse_comment_level("d") == "Đ"
        and parse_comment_level("cd") == "CĐ"
        and parse_comment_level(" ") == ""
    )
    assert parse_result_level("t") == "T" and parse_result_level("D") == "Đ"
    assert parse_primary_level("h") == "H"
    assert parse_quality_level("d") == "Đ"
    with override("en"):
        for parser, raw, message in (
            (parse_comment_level, "T", "Enter Đ (pass) or CĐ (not passed)."),
            (parse_result_level, "X", "Enter T, K, Đ or CĐ."),
            (parse_primary_level, "Đ", "Enter T, H or C."),
            (parse_quality_level, "K", "Enter T, Đ or C."),
        ):
            with pytest.raises(CellError) as caught:
                parser(raw)
            assert caught.value.messages == [message], raw


def test_a_comment_has_at_most_500_characters():
    assert parse_comment("x" * 500) == "x" * 500
    with override("en"), pytest.raises(CellError) as caught:
        parse_comment("x" * 501)
    assert (caught.value.code, caught.value.messages) == (
        "too_long",
        ["A comment has at most 500 characters."],
    )


def test_the_homeroom_comment_has_at_most_2000_characters():
    assert parse_homeroom_comment("x" * 2000) == "x" * 2000
    with override("en"), pytest.raises(CellError) as caught:
        parse_homeroom_comment("x" * 2001)
    assert caught.value.messages == [
        "The homeroom teacher's comment has at most 2000 characters (this one has 2001)."
    ]


@pytest.mark.parametrize("raw", ["-1", "1000", "2.5", "٣", "x"])
def test_absences_are_a_whole_number_of_up_to_three_digits(raw):
    assert parse_absences("999") == 999
    with override("en"), pytest.raises(CellError) as caught:
        parse_absences(raw)
    assert caught.value.messages == ["Absences are a whole number of sessions."]


def test_a_class_that_no_longer_exists_is_said_so(in_school):
    from transcripts.services import class_book_lock

    with override("en"), pytest.raises(CellError) as caught:
        class_book_lock(SchoolClass(pk=10**9))
    assert (caught.value.code, caught.value.messages) == ("no_class", ["This class no longer exists."])


def test_the_book_state_is_read_as_committed(secondary_class):
    from transcripts.services import class_book_lock, refuse_if_closed

    assert class_book_lock(secondary_class).closed_at is None
    assert refuse_if_closed(secondary_class).summer_closed_at is None
    close(secondary_class)
    assert class_book_lock(secondary_class).closed_at is not None  # the row, not the stale instance


def test_a_saved_cell_carries_its_rows_version(subject_teacher, school, secondary_class):
    saved = save(
        subject_teacher, school, secondary_class, field="mid", subject_id=subject("toan"), term=1, raw="7"
    )
    row = SubjectTermScores.objects.get(enrolment=first(secondary_class), subject_id=subject("toan"), term=1)
    assert saved.version and saved.version == row.updated_at.isoformat()


def test_a_term_lock_and_unlock_are_audited_as_such(principal, school, secondary_class):
    from django.db import connection

    term = Term.objects.get(school_year_id=secondary_class.school_year_id, number=2)
    with override("en"):
        term_lock_set(actor=principal, school=school, term=term, locked=True)
        term_lock_set(actor=principal, school=school, term=term, locked=False)
    connection.set_schema_to_public()
    entries = AuditEntry.objects.filter(object_id=str(term.pk), action__in=["term_locked", "term_unlocked"])
    summaries = dict(entries.values_list("action", "summary"))
    assert summaries["term_locked"].endswith(" locked") and summaries["term_unlocked"].endswith(" unlocked")
