"""One Vietnamese form for what a person reads (issue 14: 6,5 in the portal, 5.9 on the public
page and in the PDF, dates in three forms). portal.formats writes them; config/formats makes
Django's `{{ d|date }}` agree. Each surface a person reads is rendered here: the grade book, the
public verification page, the PDF (its text read back by pdftotext), the admin."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.template import Context, Template
from django.utils import translation

from portal.formats import date_vi, moment_vi, number_vi
from portal.models import IssuedRecord
from tests.portal.test_admin_vietnamese import visible_text
from tests.portal.test_verification import issued  # noqa: F401 -- the fixture, used below
from tests.transcripts.test_gradebook import book_url
from tests.transcripts.test_homeroom import fill_secondary
from tests.transcripts.test_pdf import poppler
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.document import year_record_parse
from transcripts.pdf import year_record_pdf

# A decimal as a machine writes it (5.9, 10.0), which a person must not read; not a version
# ("v1"), a time (22:40) or a date (06/12/2026).
DOTTED = re.compile(r"(?<![\w.])\d{1,2}\.\d{1,2}(?![\w.])")
MOMENT = re.compile(r"\b\d{2}/\d{2}/\d{4} \d{2}:\d{2}\b")
OTHER_DATE_FORMS = re.compile(r"\b\d{2}-\d{2}-\d{4}\b|\d{4}-\d{2}-\d{2}|[Nn]gày \d{1,2} tháng \d{1,2} năm")
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


# --- The functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Decimal("6.5"), None, "6,5"),
        (Decimal("8.25"), None, "8,25"),  # the places the rules gave it
        (Decimal("7.0"), None, "7,0"),
        (Decimal("7"), 1, "7,0"),
        (Decimal("8.25"), 1, "8,3"),  # half up, as the rules round
        (10, None, "10"),
        (6.5, None, "6,5"),
        ("5.9", None, "5,9"),  # as the signed XML writes it
        ("10", None, "10"),
        ("Đ", None, "Đ"),  # a grade passes unchanged
        ("CĐ", None, "CĐ"),
        (None, None, ""),
        (1200, None, "1200"),  # no grouping of thousands (portal.formats)
    ],
)
def test_a_number_is_written_with_the_vietnamese_comma(value, places, expected):
    assert number_vi(value, places=places) == expected


def test_a_day_and_a_moment_are_written_day_first_in_the_provinces_time():
    assert date_vi(dt.date(2026, 9, 5)) == "05/09/2026"
    late_utc = dt.datetime(2026, 9, 5, 20, 30, tzinfo=dt.UTC)  # 03:30 the next day in Hà Nội
    assert moment_vi(late_utc) == "06/09/2026 03:30"
    assert date_vi(late_utc) == "06/09/2026"
    assert moment_vi(None) == date_vi(None) == ""


@pytest.mark.parametrize("language", ["vi", "en"])
def test_djangos_date_filter_and_plain_output_give_the_one_form_in_both_languages(language):
    day = dt.date(2026, 9, 5)
    moment = dt.datetime(2026, 9, 5, 7, 5, tzinfo=HANOI)
    template = Template(
        "{{ day }}|{{ day|date }}|{{ day|date:'SHORT_DATE_FORMAT' }}|{{ moment }}|"
        "{{ moment|date:'DATETIME_FORMAT' }}|{{ moment|date:'SHORT_DATETIME_FORMAT' }}|{{ score }}"
    )
    with translation.override(language):
        text = template.render(Context({"day": day, "moment": moment, "score": Decimal("6.5")}))
    assert text.split("|") == [
        "05/09/2026",
        "05/09/2026",
        "05/09/2026",
        "05/09/2026 07:05",
        "05/09/2026 07:05",
        "05/09/2026 07:05",
        "6,5",
    ]


# --- The surfaces ----------------------------------------------------------------------------


def test_the_grade_book_shows_scores_and_averages_with_a_comma(
    client_as, subject_teacher, school, secondary_class
):
    connection.set_tenant(school)
    fill_secondary(secondary_class, "6.5")
    connection.set_schema_to_public()
    page = client_as(subject_teacher).get(book_url(school, secondary_class), HTTP_ACCEPT_LANGUAGE="vi")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="6,5"' in html
    assert not DOTTED.findall(visible_text(html))


def test_the_public_verification_page_shows_averages_with_a_comma_and_dates_day_first(
    issued,  # noqa: F811
    client,
):
    entry = IssuedRecord.objects.get(record_id=issued.record_id, version=issued.version)
    response = client.get(entry.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="vi")
    assert response.status_code == 200
    text = visible_text(response.content.decode())
    table = text[text.index(_vi("Subject results")) : text.index(_vi("Signatures"))]
    assert re.search(r"Toán 7,0 7,0 7,0", table)  # 8A's scores: 7.0 everywhere
    assert not DOTTED.findall(text)
    assert date_vi(entry.issued_at) in text and MOMENT.search(text)  # issued on; signed at
    assert not OTHER_DATE_FORMS.search(text)


def test_the_pdf_reads_its_averages_with_a_comma_and_its_dates_day_first(issued, tmp_path):  # noqa: F811
    document = year_record_parse(issued.issued_xml)
    pdf = tmp_path / "record.pdf"
    pdf.write_bytes(year_record_pdf(document, xml=issued.issued_xml, verify_url="https://x/"))
    text = poppler("pdftotext", "-layout", "-enc", "UTF-8", pdf, "-")
    assert re.search(r"Toán\s+7,0\s+7,0\s+7,0", text)
    assert not DOTTED.findall(text)
    assert date_vi(document.student.date_of_birth) in text


def test_the_admin_shows_moments_day_first(client_as, department_admin, school):
    page = client_as(department_admin).get("/admin/portal/auditentry/", HTTP_ACCEPT_LANGUAGE="vi")
    text = visible_text(page.content.decode())
    assert MOMENT.search(text)
    assert not OTHER_DATE_FORMS.search(text)


def _vi(msgid: str) -> str:
    with translation.override("vi"):
        return translation.gettext(msgid)
