"""A closed book looks closed: once the principal approves a class's year, its grade book pages say
so and offer no cell to type in (issue 14: cells looked editable and refused only after typing)."""

from __future__ import annotations

import re

from django.db import connection

from schools.models import SchoolClass
from tests.transcripts.test_gradebook import book_url
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- a fixture
from transcripts.yearclose import class_year_close


def _approved(principal, school, complete_class):  # noqa: F811
    school_class, _enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    connection.set_tenant(school)
    return SchoolClass.objects.get(pk=school_class.pk)


def _inputs(html: str) -> list[str]:
    return re.findall(r"<input [^>]*data-field=[^>]*>", html)


def test_the_grade_book_of_an_open_class_offers_cells_to_type_in(
    client_as, subject_teacher, school, secondary_class
):
    html = client_as(subject_teacher).get(book_url(school, secondary_class) + "?hk=1").content.decode()

    assert _inputs(html) and not any("readonly" in i for i in _inputs(html))
    assert "sổ đã khóa" not in html


def test_the_grade_book_of_an_approved_class_says_it_is_closed_and_every_cell_is_read_only(
    client_as,
    principal,
    subject_teacher,
    school,
    complete_class,  # noqa: F811
):
    school_class = _approved(principal, school, complete_class)

    response = client_as(subject_teacher).get(book_url(school, school_class) + "?hk=1")

    html = response.content.decode()
    assert response.status_code == 200
    assert "năm học đã được" in html.lower() and "sổ đã khóa" in html
    assert _inputs(html) and all("readonly" in i for i in _inputs(html))
    assert "mỗi ô được lưu ngay" not in html.lower()


def test_the_grade_book_index_marks_an_approved_class_closed_and_offers_no_entry(
    client_as,
    principal,
    subject_teacher,
    school,
    complete_class,  # noqa: F811
):
    school_class = _approved(principal, school, complete_class)

    html = client_as(subject_teacher).get(f"/truong/{school.code}/so-diem/").content.decode()

    card = html[html.index(f"Lớp {school_class.name}") :]
    card = card[: card.index("</section>")]
    assert "sổ của lớp này đã đóng" in card
    assert "bạn nhập" not in card
