"""A cell edited offline meets what was saved meanwhile: compare-and-set, never a silent overwrite.

The grade book sends with each value the value the cell showed before the edit (`expected`). The
server writes only when the stored value is still that one (or already the new one: a repeat of an
edit whose answer was lost); otherwise it answers 409 with both values and writes nothing.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from schools.models import Enrolment
from tests.transcripts.test_gradebook import first_enrolment, post_cell
from tests.transcripts.test_homeroom import homeroom_url
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- a fixture
from transcripts.models import AssessmentChange, StudentYear, SubjectTermScores
from transcripts.services import CellConflict
from transcripts.yearclose import class_year_close, summer_cell_save


def _stored(school, enrolment, field="mid"):
    connection.set_tenant(school)
    row = SubjectTermScores.objects.filter(enrolment=enrolment, term=1).first()
    return None if row is None else getattr(row, field)


def _changes(school, enrolment, field="mid") -> list[tuple[str, str]]:
    connection.set_tenant(school)
    return list(
        AssessmentChange.objects.filter(enrolment=enrolment, field=field)
        .order_by("id")
        .values_list("old", "new")
    )


def test_a_value_typed_over_a_cell_changed_meanwhile_is_a_conflict_with_both_values_and_nothing_written(
    client_as, subject_teacher, school, secondary_class
):
    enrolment = first_enrolment(secondary_class)
    client = client_as(subject_teacher)
    # Another device saved 7 while this one, offline, had the cell empty and typed 8.
    assert (
        post_cell(client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="7").status_code
        == 200
    )

    response = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="8", expected=""
    )

    assert response.status_code == 409, response.content
    answer = response.json()
    assert (answer["conflict"], answer["current"], answer["yours"]) == (True, "7,0", "8")
    assert "đã được đổi thành “7,0”" in answer["error"]  # Vietnamese first
    assert _stored(school, enrolment) == Decimal("7")
    assert _changes(school, enrolment) == [("", "7,0")]


def test_keeping_mine_after_a_conflict_sends_it_again_over_the_value_now_shown(
    client_as, subject_teacher, school, secondary_class
):
    enrolment = first_enrolment(secondary_class)
    client = client_as(subject_teacher)
    post_cell(client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="7")
    assert (
        post_cell(
            client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="8", expected=""
        ).status_code
        == 409
    )

    response = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="8", expected="7"
    )

    assert response.status_code == 200, response.content
    assert _stored(school, enrolment) == Decimal("8")
    assert _changes(school, enrolment) == [("", "7,0"), ("7,0", "8,0")]


def test_an_edit_sent_again_after_its_answer_was_lost_is_written_once(
    client_as, subject_teacher, school, secondary_class
):
    enrolment = first_enrolment(secondary_class)
    client = client_as(subject_teacher)
    first = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="6,5", expected=""
    )
    again = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="6,5", expected=""
    )

    assert (first.status_code, first.json()["changed"]) == (200, True)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    assert _changes(school, enrolment) == [("", "6,5")]


@pytest.mark.parametrize("seen", ["7,5", "7.5", " 7,5 "])
def test_the_value_seen_matches_however_the_decimal_was_written(
    client_as, subject_teacher, school, secondary_class, seen
):
    enrolment = first_enrolment(secondary_class)
    client = client_as(subject_teacher)
    post_cell(client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="7,5")

    response = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="9", expected=seen
    )

    assert response.status_code == 200, response.content
    assert _stored(school, enrolment) == Decimal("9")


@pytest.mark.parametrize("seen", ["abc", "7,55", "x" * 600])
def test_a_value_seen_that_no_cell_can_hold_is_a_conflict_not_a_blind_write(
    client_as, subject_teacher, school, secondary_class, seen
):
    enrolment = first_enrolment(secondary_class)
    client = client_as(subject_teacher)

    response = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="9", expected=seen
    )

    assert response.status_code == 409, response.content
    assert _stored(school, enrolment) is None


def test_a_refusal_is_still_a_refusal_when_the_cell_also_changed(
    client_as, subject_teacher, school, secondary_class
):
    # An invalid value is refused (400, not retried) before any comparison: a conflict is offered
    # only for a value that could be written.
    enrolment = first_enrolment(secondary_class)
    client = client_as(subject_teacher)
    post_cell(client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="7")

    response = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="mid", value="11", expected=""
    )

    assert response.status_code == 400
    assert "conflict" not in response.json()


def test_a_homeroom_cell_changed_meanwhile_is_a_conflict_too(
    client_as, homeroom_teacher, school, secondary_class
):
    enrolment = Enrolment.objects.filter(school_class=secondary_class).order_by("number").first()
    client = client_as(homeroom_teacher)
    url = homeroom_url(school, secondary_class, "o/")
    client.post(url, {"enrolment": enrolment.pk, "field": "conduct_term1", "value": "K"})

    conflict = client.post(
        url, {"enrolment": enrolment.pk, "field": "conduct_term1", "value": "T", "expected": ""}
    )
    kept = client.post(
        url, {"enrolment": enrolment.pk, "field": "conduct_term1", "value": "T", "expected": "K"}
    )

    assert conflict.status_code == 409 and conflict.json()["current"] == "K"
    assert kept.status_code == 200
    connection.set_tenant(school)
    assert StudentYear.objects.get(enrolment=enrolment).conduct_term1 == "T"


def test_an_august_cell_changed_meanwhile_is_a_conflict_too(
    principal,
    homeroom_teacher,
    school,
    complete_class,  # noqa: F811 -- the fixture imported above
):
    school_class, enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    common = {
        "actor": homeroom_teacher,
        "school": school,
        "school_class": school_class,
        "enrolment_id": enrolments[0].pk,
        "field": "retake:toan",
    }
    summer_cell_save(**common, raw="6")

    with pytest.raises(CellConflict) as conflict:
        summer_cell_save(**common, raw="4", expected="")
    summer_cell_save(**common, raw="4", expected="6")

    assert (conflict.value.current, conflict.value.yours) == ("6,0", "4")
