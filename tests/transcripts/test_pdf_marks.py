"""The visible signature marks on the year record PDF, read from the XAdES signatures of its XML,
and the seal's block found in the layout (transcripts.pdf.marks, transcripts.pdf.render).

The documents are signed for real (signing.profile, keys of a development CA; the timestamps of
the reference TSA, a real process) and the PDF read back with poppler's pdftotext.
"""

from __future__ import annotations

import datetime as dt

import pytest

from signing import ca, timestamps
from signing.profile import sign_year_record
from tests.transcripts.test_document import primary_record, secondary_record
from tests.transcripts.test_pdf import poppler
from transcripts.document import year_record_xml
from transcripts.pdf import SEAL_BLOCK_ID, signature_marks, year_record_html, year_record_pdf_rendered

SIGNED_AT = dt.datetime(2026, 5, 30, 2, 3, 4, tzinfo=dt.UTC)  # 09:03:04 in Hà Nội
A4 = (595.28, 841.89)  # points
MM = 72 / 25.4


@pytest.fixture(scope="module")
def dev():
    authority = ca.dev_ca("Học bạ số (dấu kiểm thử)")
    return {
        "authority": authority,
        "homeroom_teacher": ca.issue_person(
            authority, common_name="Nguyễn Thị Chủ Nhiệm", title="Giáo viên chủ nhiệm"
        ),
        "principal": ca.issue_person(authority, common_name="Trần Văn Hiệu Trưởng", title="Hiệu trưởng"),
        "seal": ca.issue_organisation(authority, name="Trường Kiểm Thử Dấu", province="Lào Cai"),
    }


def signed(xml: bytes, dev, *, timestamper=None) -> bytes:
    for role in ("homeroom_teacher", "principal", "seal"):
        issued = dev[role]
        xml = sign_year_record(
            xml,
            key=issued.key,
            cert=issued.cert,
            chain=issued.chain,
            role=role,
            signing_time=SIGNED_AT,
            timestamper=timestamper,
        )
    return xml


def test_the_marks_name_each_signer_with_their_title_and_the_signing_time_in_vietnam(dev):
    marks = signature_marks(signed(year_record_xml(secondary_record()), dev))

    assert set(marks) == {"homeroom_teacher", "principal", "seal"}
    assert (marks["homeroom_teacher"].name, marks["homeroom_teacher"].title) == (
        "Nguyễn Thị Chủ Nhiệm",
        "Giáo viên chủ nhiệm",
    )
    assert (marks["principal"].name, marks["principal"].title) == ("Trần Văn Hiệu Trưởng", "Hiệu trưởng")
    assert marks["seal"].title == "Trường Kiểm Thử Dấu"  # no T: the organisation
    for mark in marks.values():  # no timestamp: xades:SigningTime
        assert mark.time == SIGNED_AT and not mark.timestamped
        assert mark.time_text == "30/05/2026 09:03:04"
    assert signature_marks(year_record_xml(secondary_record())) == {}  # unsigned: no marks
    assert signature_marks(b"<not xml") == {}


def test_a_timestamped_signature_shows_the_timestamp_time(dev, timestamping):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    xml = signed(year_record_xml(secondary_record()), dev, timestamper=timestamps.timestamper())

    marks = signature_marks(xml)

    for mark in marks.values():
        assert mark.timestamped
        assert mark.time != SIGNED_AT and mark.time >= before  # the TSA's genTime, not the claim
        assert mark.time_text == mark.time.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime(
            "%d/%m/%Y %H:%M:%S"
        )


@pytest.mark.parametrize("make", [primary_record, secondary_record], ids=["primary", "secondary"])
def test_the_pdf_shows_the_marks_in_the_signers_blocks(make, dev, tmp_path):
    record = make()
    xml = signed(year_record_xml(record), dev)
    rendered = year_record_pdf_rendered(record, xml=xml, verify_url="https://hocba.example.vn/tra-cuu/x")
    path = tmp_path / "record.pdf"
    path.write_bytes(rendered.pdf)
    pages = int(poppler("pdfinfo", path).split("Pages:")[1].split()[0])
    text = {
        n: poppler("pdftotext", "-f", n, "-l", n, "-enc", "UTF-8", path, "-") for n in range(1, pages + 1)
    }

    # Page 1: the principal's block (the seal's stamp goes beside it, when the seal signs the PDF).
    assert "Ký bởi: Trần Văn Hiệu Trưởng" in text[1] and "Chức vụ: Hiệu trưởng" in text[1]
    assert "Ký bởi: Nguyễn Thị Chủ Nhiệm" not in text[1]
    # The last page: the homeroom teacher's and the principal's blocks.
    assert "Ký bởi: Nguyễn Thị Chủ Nhiệm" in text[pages] and "Chức vụ: Giáo viên chủ nhiệm" in text[pages]
    assert "Ký bởi: Trần Văn Hiệu Trưởng" in text[pages]
    assert text[1].count("Thời gian ký: 30/05/2026 09:03:04") == 1
    assert text[pages].count("Thời gian ký: 30/05/2026 09:03:04") >= 2
    # The seal's mark is its PDF signature's stamp: not drawn by the template.
    assert "Ký bởi: Trường Kiểm Thử Dấu" not in "".join(text.values())


@pytest.mark.parametrize("make", [primary_record, secondary_record], ids=["primary", "secondary"])
def test_the_seal_block_is_found_on_page_one_where_the_template_puts_it(make, dev):
    record = make()
    xml = signed(year_record_xml(record), dev)
    html = year_record_html(record, verify_url="https://x/", marks=signature_marks(xml))
    assert html.count(f'id="{SEAL_BLOCK_ID}"') == 1

    rendered = year_record_pdf_rendered(record, xml=xml, verify_url="https://x/")

    assert rendered.seal_box is not None
    page, x1, y1, x2, y2 = rendered.seal_box
    assert page == 0
    assert 0 < x1 < x2 < A4[0] / 2  # the left half, beside the principal's block
    assert 0 < y1 < y2 < A4[1]
    assert x2 - x1 == pytest.approx(68 * MM, abs=0.5) and y2 - y1 == pytest.approx(19 * MM, abs=0.5)  # CSS
