"""The grade book's rows (transcripts_tags.gradebook_rows): the markup the page's script and the
screen readers rely on, escaped, in a fixed number of statements."""

from __future__ import annotations

from html.parser import HTMLParser

from django.db import connection
from django.test.utils import CaptureQueriesContext

from schools.models import Enrolment

from .test_gradebook import book_url, first_enrolment, post_cell


class _Table(HTMLParser):
    """The grade book table as data: header texts, and per row its attributes, cells and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.rows: list[dict] = []
        self._in_th = self._in_name = self._in_avg = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "th":
            self._in_th = True
            self.headers.append("")
        elif tag == "tr" and "data-enrolment" in a:
            self.rows.append({"attrs": a, "name": "", "inputs": [], "average": None})
        elif self.rows and tag == "td" and a.get("class") == "name":
            self._in_name = True
        elif self.rows and tag == "td" and "data-average" in a:
            self._in_avg = True
            self.rows[-1]["average"] = ""
        elif self.rows and tag == "input":
            self.rows[-1]["inputs"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td"):
            self._in_th = self._in_name = self._in_avg = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.headers[-1] += data
        elif self._in_name:
            self.rows[-1]["name"] += data
        elif self._in_avg:
            self.rows[-1]["average"] += data


def _table(response) -> _Table:
    assert response.status_code == 200
    parser = _Table()
    parser.feed(response.content.decode())
    return parser


HOSTILE_NAME = '<script>alert("x")</script> Lê & "Nam" \'B\''
HOSTILE_COMMENT = 'Tốt <b>"lắm"</b> & <img src=x onerror=alert(1)>'


def test_a_students_name_and_a_comment_are_escaped_wherever_the_rows_show_them(
    client_as, subject_teacher, school, secondary_class
):
    enrolment = first_enrolment(secondary_class)
    enrolment.student.full_name = HOSTILE_NAME
    enrolment.student.save(update_fields=["full_name"])
    client = client_as(subject_teacher)
    saved = post_cell(
        client, school, secondary_class, enrolment=enrolment.pk, field="comment", value=HOSTILE_COMMENT
    )
    assert saved.status_code == 200, saved.content

    response = client.get(book_url(school, secondary_class))

    page = response.content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>" not in page
    row = next(r for r in _table(response).rows if r["attrs"]["data-enrolment"] == str(enrolment.pk))
    assert row["name"] == HOSTILE_NAME
    comment = next(i for i in row["inputs"] if i["data-field"] == "comment")
    assert comment["value"] == saved.json()["value"] == HOSTILE_COMMENT
    assert all(i["aria-label"].endswith(f" · {HOSTILE_NAME}") for i in row["inputs"])


def test_every_cell_carries_what_the_script_and_screen_readers_read(
    client_as, subject_teacher, school, secondary_class
):
    enrolment = first_enrolment(secondary_class)
    students = list(
        Enrolment.objects.filter(school_class=secondary_class, status="active")
        .order_by("number", "student__full_name")
        .values_list("pk", "student__full_name")
    )
    client = client_as(subject_teacher)
    for field, value in (("regular_1", "7"), ("regular_2", "8"), ("mid", "6,5"), ("end", "9")):
        post_cell(client, school, secondary_class, enrolment=enrolment.pk, field=field, value=value)

    response = client.get(book_url(school, secondary_class))
    table = _table(response)

    book = response.context["book"]
    fields = [field for field, _header in book.columns]
    # No., Full name, one header a column, then the term average.
    headers = table.headers[2 : 2 + len(fields)]
    assert table.headers[-1] == "ĐTBmhk" and len(table.headers) == len(fields) + 3
    assert [(int(r["attrs"]["data-enrolment"]), r["name"]) for r in table.rows] == students
    for row in table.rows:
        assert [i["data-field"] for i in row["inputs"]] == [i["name"] for i in row["inputs"]] == fields
        for field, header, cell in zip(fields, headers, row["inputs"], strict=True):
            assert cell["aria-label"] == f"{header} · {row['name']}"
            assert cell["autocomplete"] == "off" and "readonly" not in cell
            if field == "comment":
                assert cell["class"] == "wide" and "inputmode" not in cell
            else:
                assert (cell["inputmode"], cell["size"]) == ("decimal", "4")
        assert row["average"] is not None
    first = table.rows[0]
    assert {i["data-field"]: i["value"] for i in first["inputs"]} | {"avg": first["average"]} == {
        **{f: "" for f in fields},
        **{"regular_1": "7,0", "regular_2": "8,0", "mid": "6,5", "end": "9,0"},
        "avg": response.context["book"].rows[0].average,
    }


def test_a_reader_sees_every_cell_read_only(client_as, homeroom_teacher, school, secondary_class):
    table = _table(client_as(homeroom_teacher).get(book_url(school, secondary_class)))

    inputs = [i for row in table.rows for i in row["inputs"]]
    assert inputs and all("readonly" in i for i in inputs)


def test_a_primary_book_has_levels_test_scores_and_comments_and_no_average(
    client_as, homeroom_teacher, school, primary_class
):
    response = client_as(homeroom_teacher).get(book_url(school, primary_class) + "?ky=end1")
    table = _table(response)

    assert table.rows
    for row in table.rows:
        assert [i["data-field"] for i in row["inputs"]] == ["level", "test_score", "comment"]
        assert row["average"] is None


def test_the_page_issues_the_same_few_statements_whatever_is_in_the_rows(
    client_as, subject_teacher, school, secondary_class
):
    enrolments = list(Enrolment.objects.filter(school_class=secondary_class))
    client = client_as(subject_teacher)
    client.get(book_url(school, secondary_class))
    with CaptureQueriesContext(connection) as empty:
        client.get(book_url(school, secondary_class))
    for enrolment in enrolments:
        post_cell(client, school, secondary_class, enrolment=enrolment.pk, field="comment", value="Tốt")
    with CaptureQueriesContext(connection) as filled:
        client.get(book_url(school, secondary_class))

    def real(queries):
        return [q["sql"] for q in queries if not q["sql"].startswith("SET search_path")]

    # The user, their roles, the class, the subject, its teacher, the students, their scores,
    # the term's lock, the first-time guides dismissed (the session comes from the cache):
    # nothing per row or per cell.
    assert len(real(filled)) == len(real(empty)) <= 9, real(filled)
