"""The year record's PDF: the paper form as PDF/A-3b, readable text, the XML attached byte for byte.

Pure: no database. The sample records are test_document's (a grade 5 pupil under TT27, a grade 8
student under TT22 signed by a vice-principal). The PDF is read back by Debian's poppler-utils
(pdftotext, pdfdetach, pdffonts, pdfinfo), a reader independent of the writer.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import re
import shutil
import subprocess
import unicodedata
import zlib
from pathlib import Path

import pytest

from tests.transcripts.test_document import primary_record, secondary_record
from transcripts.document import YearRecord, year_record_xml
from transcripts.pdf import attachment_name, year_record_html, year_record_pdf
from transcripts.pdf.render import user_agent_stylesheet_text

RECORDS = {"primary": primary_record, "secondary": secondary_record}
VERIFY = "https://hocba.laocai.edu.vn/xac-thuc/{id}/v{version}"


def poppler(tool: str, *args: str | Path) -> str:
    """Run a poppler-utils tool (Debian package poppler-utils) and return its standard output."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: apt-get install poppler-utils")
    result = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def verify_url(record: YearRecord) -> str:
    return VERIFY.format(id=record.record_id, version=record.version)


@dataclasses.dataclass
class Rendered:
    record: YearRecord
    xml: bytes
    pdf: bytes
    path: Path

    def text(self) -> str:
        return unicodedata.normalize("NFC", poppler("pdftotext", "-layout", "-enc", "UTF-8", self.path, "-"))

    def flat_text(self) -> str:
        """The text in reading order, runs of spaces and line breaks as one space (for wrapped cells)."""
        raw = poppler("pdftotext", "-enc", "UTF-8", self.path, "-")
        return re.sub(r"\s+", " ", unicodedata.normalize("NFC", raw))


_cache: dict[str, tuple[YearRecord, bytes, bytes]] = {}


@pytest.fixture(params=list(RECORDS))
def rendered(request, tmp_path) -> Rendered:
    kind = request.param
    if kind not in _cache:  # one render per kind for the whole module: it is the slow part
        record = RECORDS[kind]()
        xml = year_record_xml(record)
        _cache[kind] = (record, xml, year_record_pdf(record, xml=xml, verify_url=verify_url(record)))
    record, xml, pdf = _cache[kind]
    path = tmp_path / f"{kind}.pdf"
    path.write_bytes(pdf)
    return Rendered(record, xml, pdf, path)


def pdf_streams(pdf: bytes) -> list[bytes]:
    """Every stream of the PDF, inflated where it is Flate-compressed."""
    streams = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        data = match.group(1)
        with contextlib.suppress(zlib.error):  # not Flate: kept as it is
            data = zlib.decompress(data)
        streams.append(data)
    return streams


def test_the_text_has_the_student_and_the_results_with_their_diacritics(rendered):
    text = rendered.text()
    record = rendered.record

    assert record.student.full_name in text  # on the year pages
    assert record.student.full_name.upper() in text  # on the identity page
    assert f"Năm học: {record.school_year}" in text
    flat = rendered.flat_text()
    for row in record.part.subjects:
        assert row.name in flat, row.name
    if record.level == "primary":
        assert "Nguyễn Thị Ánh Tuyết" in text
        assert "HỌC BẠ" in text and "TIỂU HỌC" in text
        for label in (
            "1. Các môn học và hoạt động giáo dục",
            "2. Những phẩm chất chủ yếu",
            "3. Những năng lực cốt lõi",
            "3.1. Những năng lực chung",
            "3.2. Những năng lực đặc thù",
            "4. Đánh giá kết quả giáo dục: Hoàn thành tốt",
            "Hoàn thành chương trình tiểu học",
            "Đọc diễn cảm, viết đoạn văn mạch lạc.",
            "Tự chủ và tự học",
            "Người giám hộ (nếu có):",
        ):
            assert label in text, label
        assert re.search(r"Tiếng Việt\s+T\s+9\s+Đọc diễn cảm", text)
        assert re.search(r"Toán\s+T\s+10\s+Giải toán", text)
    else:
        assert "Hoàng Văn Đức" in text
        assert "TRUNG HỌC CƠ SỞ" in text
        for label in (
            "Môn học/Hoạt động",
            "Học kì I",
            "Học kì II",
            "Cả năm",
            "NHẬN XÉT CỦA GIÁO VIÊN CHỦ NHIỆM",
            "Cần cố gắng hơn ở môn Toán.",
            "Chứng chỉ Tiếng Anh A2",
            "Giải Ba Hội khỏe Phù Đổng cấp xã",
        ):
            assert label in text, label
        # Toán: term I, term II, year, after re-assessment, and its teacher.
        assert re.search(r"Toán\s+4,2\s+4,6\s+4,5\s+6,0\n", text)  # the Vietnamese comma
        assert "Cần rèn kĩ năng giải phương trình." in text
        assert re.search(r"Giáo dục thể chất\s+Đ\s+Đ\s+Đ", text)
        # Conduct and learning per term, learning "Đạt" after re-assessment, 7 sessions absent.
        assert re.search(r"Học kì I\s+Khá\s+Đạt", text)
        assert re.search(r"Cả năm\s+Khá\s+Chưa đạt\s+Đạt", text)
        assert re.search(r"Học kì II\s+Khá\s+Chưa đạt\s+7", text)
        assert re.search(r"trong kì nghỉ hè: Lên lớp 9", text)
        assert "Vũ Minh Châu" in text


def test_the_signature_blocks_name_the_signers_with_their_titles(rendered):
    text = rendered.text()
    signers = rendered.record.signers

    for label in ("Giáo viên chủ nhiệm", "(Ký và ghi rõ họ tên)", "(Ký, ghi rõ họ tên và đóng dấu)"):
        assert label in text, label
    assert signers.homeroom_teacher in text and signers.principal in text
    assert "Lào Cai, ngày 2" in text
    if signers.principal_title.startswith("KT."):
        assert re.search(
            r"KT\. HIỆU TRƯỞNG\s*\n\s*PHÓ HIỆU TRƯỞNG\s*\n\s*\(Ký, ghi rõ họ tên và đóng dấu\)", text
        )
    else:
        assert re.search(r"\n\s*HIỆU TRƯỞNG\s*\n\s*\(Ký, ghi rõ họ tên và đóng dấu\)", text)
        assert "KT." not in text


def test_a_principal_signing_in_person_has_no_kt_line():
    record = secondary_record()
    record = dataclasses.replace(
        record, signers=dataclasses.replace(record.signers, principal_title="Hiệu trưởng")
    )
    html = year_record_html(record, verify_url=verify_url(record))

    assert "KT. HIỆU TRƯỞNG" not in html and "PHÓ HIỆU TRƯỞNG" not in html
    assert '<div class="sign-title">HIỆU TRƯỞNG</div>' in html


def test_the_embedded_xml_is_byte_identical_to_the_one_given(rendered, tmp_path):
    out = tmp_path / "attachments"
    out.mkdir()
    listing = poppler("pdfdetach", "-list", rendered.path)
    poppler("pdfdetach", "-saveall", "-o", out, rendered.path)

    name = attachment_name(rendered.record)
    assert name == f"{rendered.record.record_id}-v{rendered.record.version}.xml"
    assert "1 embedded files" in listing and name in listing
    assert [p.name for p in out.iterdir()] == [name]
    assert (out / name).read_bytes() == rendered.xml
    # PDF/A-3 associated file: listed in the catalog's /AF, with its relationship to the document.
    objects = b"".join(pdf_streams(rendered.pdf))  # the dictionaries are in compressed object streams
    assert b"/AFRelationship /Source" in objects
    assert re.search(rb"/AF\s*\[", objects)


def test_the_pdf_identifies_itself_as_pdf_a_3b(rendered):
    xmp = [s for s in pdf_streams(rendered.pdf) if b"<x:xmpmeta" in s]

    assert len(xmp) == 1
    meta = xmp[0].decode()
    assert re.search(r'pdfaid:part(="3"|>3</pdfaid:part>)', meta), meta
    assert re.search(r'pdfaid:conformance(="B"|>B</pdfaid:conformance>)', meta), meta
    assert rendered.record.student.full_name in meta  # the title, in the metadata too
    assert rendered.pdf.startswith(b"%PDF-1.7")
    assert b"/OutputIntents" in b"".join(pdf_streams(rendered.pdf))  # the sRGB output intent PDF/A requires


def test_the_pdf_is_a4_and_one_year_in_its_page_block(rendered):
    info = poppler("pdfinfo", rendered.path)

    assert re.search(r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info), info
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    # Identity page, then the year's page (primary) or pages A and B (secondary).
    assert pages == (2 if rendered.record.level == "primary" else 3)
    assert "Title:           Học bạ" in info
    assert f"Author:          {rendered.record.issuer.school_name}" in info


def test_the_shipped_font_is_embedded(rendered):
    fonts = poppler("pdffonts", rendered.path).splitlines()[2:]

    assert fonts
    for line in fonts:
        name, *_, emb, sub, uni, _obj, _gen = line.split()
        assert "Noto-Serif" in name, line  # never a system fallback font
        assert (emb, sub, uni) == ("yes", "yes", "yes"), line


def test_the_qr_code_and_the_record_id_are_on_the_first_page(rendered):
    record = rendered.record
    html = year_record_html(record, verify_url=verify_url(record))
    first_page = poppler("pdftotext", "-f", "1", "-l", "1", rendered.path, "-")

    assert html.count("<svg") == 1
    assert re.sub(r"\s+", "", verify_url(record)) in re.sub(r"\s+", "", first_page)
    assert f"Phiên bản {record.version}" in first_page
    if record.supersedes:
        assert f"thay thế phiên bản {record.supersedes.version}" in first_page


def test_the_same_record_renders_the_same_bytes():
    record = primary_record()
    xml = year_record_xml(record)
    first = year_record_pdf(record, xml=xml, verify_url=verify_url(record))
    second = year_record_pdf(primary_record(), xml=xml, verify_url=verify_url(record))

    # Dates in the PDF are the record's date of issue, and the file ID is a hash of the content.
    assert first == second
    assert b"D:20250528" in first


def test_a_record_prints_the_same_after_others_as_in_a_new_printer():
    # The fonts and stylesheets are kept per process and thread (render._printer): a record printed
    # after other records is byte for byte the one a new thread (a new printer) prints.
    primary, secondary = primary_record(), secondary_record()
    first = year_record_pdf(primary, xml=year_record_xml(primary), verify_url=verify_url(primary))
    year_record_pdf(secondary, xml=year_record_xml(secondary), verify_url=verify_url(secondary))
    again = year_record_pdf(primary, xml=year_record_xml(primary), verify_url=verify_url(primary))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        fresh = pool.submit(
            year_record_pdf, primary, xml=year_record_xml(primary), verify_url=verify_url(primary)
        ).result()

    assert first == again == fresh


def test_the_user_agent_stylesheet_drops_only_the_rules_for_every_elements_pseudo_elements():
    from weasyprint.html import UA

    pruned = user_agent_stylesheet_text()
    dropped = (
        "::marker",
        "::footnote-call",
        "::footnote-marker",
        "::note-call",
        "::note-marker",
        "::note-callback",
    )
    for name in dropped:
        # A WeasyPrint that writes them otherwise fails here: the forms would print slower.
        assert f"\n{name} {{" in UA and f"\n{name} {{" not in pruned, name
    assert 'br::before { content: "\\A"; white-space: pre-line }' in pruned  # an element's own: kept
    assert pruned.splitlines() == ["" if line.startswith("::") else line for line in UA.splitlines()]


def test_a_word_too_long_for_its_column_breaks_inside_the_table(tmp_path):
    # The forms' tables have fixed columns (table-layout: fixed): a word longer than its cell is
    # broken across lines, never drawn past the table's right edge into the margin.
    record = primary_record()
    word = "Rất" + "chămchỉ" * 30
    subjects = (dataclasses.replace(record.part.subjects[0], comment=word), *record.part.subjects[1:])
    record = dataclasses.replace(record, part=dataclasses.replace(record.part, subjects=subjects))
    path = tmp_path / "long.pdf"
    path.write_bytes(year_record_pdf(record, xml=year_record_xml(record), verify_url=verify_url(record)))

    page = poppler("pdftotext", "-f", "2", "-l", "2", "-bbox", path, "-")
    right_edges = [float(x) for x in re.findall(r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="([\d.]+)"', page)]
    pieces = [w for w in re.findall(r">([^<]*chămchỉ[^<]*)</word>", unicodedata.normalize("NFC", page))]

    assert len(pieces) >= 3  # the word wrapped over lines of its cell
    assert "".join(pieces) == word
    assert max(right_edges) <= 595.28 - 14 * 72 / 25.4 + 0.5  # A4 less the right margin (14 mm)


def test_every_stream_is_deflated(rendered):
    # By render._deflate_streams (zlib level 6), or by pydyf when it could not (PDF/A-3 allows a
    # deflated XMP too, as WeasyPrint writes it).
    dictionaries = re.findall(rb"(<<(?:(?!>>\s*stream).)*?>>)\s*stream\r?\n", rendered.pdf, re.S)

    assert len(dictionaries) > 5
    for dictionary in dictionaries:
        assert b"/Filter /FlateDecode" in dictionary, dictionary[:200]
