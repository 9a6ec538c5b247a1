"""Hostile workbooks are refused with a clear reason, before they cost memory or time (issue 9,
findings 9 and 11).

Every file here is built in the test with zipfile: a shared string that unpacks to tens of MB,
parts that unpack hundreds of times their size, too many parts, sheets of blank rows, DOCTYPE
and ENTITY declarations (XXE, billion laughs), markup in UTF-16, a password-protected workbook,
an .xls renamed, a zip that is not a workbook, a workbook with a sheet missing. Through the page,
each answers 400 with the reason in Vietnamese, never 500.
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from schools.imports import SchoolImportError, school_data_import
from schools.imports.workbook import _workbook_read
from tests.schools.test_imports import STUDENT_HEADER, good_sheets, row_counts, student_row, xlsx

SHEET = "xl/worksheets/sheet1.xml"  # the first sheet, Lop, in the good workbook
STRINGS_BOMB_MB = 30


def rewrite(data: bytes, members: dict[str, object]) -> bytes:
    """The workbook with `members` replaced or added (bytes, or a function yielding chunks,
    streamed) or removed (None)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for name in source.namelist():
            if name not in members:
                target.writestr(name, source.read(name))
        for name, content in members.items():
            if content is None:
                continue
            if isinstance(content, bytes):
                target.writestr(name, content)
                continue
            with target.open(name, "w", force_zip64=True) as member:
                for chunk in content():  # type: ignore[operator]
                    member.write(chunk)
    return out.getvalue()


def good() -> bytes:
    return xlsx(good_sheets())


def _repeated(prefix: bytes, megabytes: int, suffix: bytes):
    def chunks():
        yield prefix
        block = b"A" * (1024 * 1024)
        for _ in range(megabytes):
            yield block
        yield suffix

    return chunks


def shared_string_bomb() -> bytes:
    """A ~30 KB file whose one shared string unpacks to 30 MB (the finding's was 300 MB)."""
    return rewrite(
        good(),
        {
            "xl/sharedStrings.xml": _repeated(
                b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
                b'spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>',
                STRINGS_BOMB_MB,
                b"</t></si></sst>",
            )
        },
    )


def sheet_xml(rows: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>ten_lop</t></is></c>'
        b'<c r="B1" t="inlineStr"><is><t>khoi</t></is></c></row>' + rows + b"</sheetData></worksheet>"
    )


def blank_rows(count: int, first: int = 2) -> bytes:
    return b"".join(
        b'<row r="%d"><c r="A%d" t="inlineStr"><is><t></t></is></c></row>' % (n, n)
        for n in range(first, first + count)
    )


def class_row(number: int, name: str, grade: int) -> bytes:
    return b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c><c r="B%d"><v>%d</v></c></row>' % (
        number,
        number,
        name.encode(),
        number,
        grade,
    )


DTD_SHEET = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>&c;</t></is></c></row></sheetData></worksheet>'
)
XXE_WORKBOOK = (
    b'<?xml version="1.0"?><!DOCTYPE workbook [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/>'
    b"<definedNames><definedName>&x;</definedName></definedNames></workbook>"
)


def cfb(*, encrypted: bool) -> bytes:
    """The start of an OLE2 compound file: an .xls, or an .xlsx encrypted with a password."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    directory = ("EncryptionInfo" if encrypted else "Workbook").encode("utf-16-le")
    return header + directory + b"\0" * 4096


def many_parts(count: int) -> bytes:
    return rewrite(good(), {f"xl/media/image{n}.png": b"\x89PNG" for n in range(count)})


# (builder, the exact reason in Vietnamese)
HOSTILE = {
    "shared string of 30 MB": (
        shared_string_bomb,
        "Tệp quá lớn: phần xl/sharedStrings.xml khi giải nén vượt quá 25 MB.",
    ),
    "part unpacking 1,000 times its size": (
        lambda: rewrite(good(), {SHEET: sheet_xml(b" " * (3 * 1024 * 1024))}),
        "Tệp quá lớn: phần xl/worksheets/sheet1.xml khi giải nén lớn gấp 964 lần kích thước nén, "
        "vượt xa một bảng tính thông thường.",
    ),
    "more than 200 parts": (
        lambda: many_parts(200),
        "Tệp quá lớn: bảng tính có hơn 200 thành phần.",
    ),
    "DOCTYPE in a sheet (billion laughs)": (
        lambda: rewrite(good(), {SHEET: DTD_SHEET}),
        "Phần xl/worksheets/sheet1.xml của bảng tính có khai báo DOCTYPE hoặc ENTITY, điều mà Excel "
        "không bao giờ ghi; tệp bị từ chối để đảm bảo an toàn.",
    ),
    "external entity in the workbook (XXE)": (
        lambda: rewrite(good(), {"xl/workbook.xml": XXE_WORKBOOK}),
        "Phần xl/workbook.xml của bảng tính có khai báo DOCTYPE hoặc ENTITY, điều mà Excel "
        "không bao giờ ghi; tệp bị từ chối để đảm bảo an toàn.",
    ),
    "DOCTYPE hidden in UTF-16": (
        lambda: rewrite(good(), {SHEET: DTD_SHEET.replace(b"UTF-8", b"UTF-16").decode().encode("utf-16")}),
        "Phần xl/worksheets/sheet1.xml của bảng tính không được mã hóa UTF-8 như Excel vẫn ghi.",
    ),
    "DOCTYPE hidden in UTF-7": (
        lambda: rewrite(
            good(), {SHEET: b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x+AD4-<worksheet/>'}
        ),
        "Phần xl/worksheets/sheet1.xml của bảng tính không được mã hóa UTF-8 như Excel vẫn ghi.",
    ),
    "password-protected workbook": (
        lambda: cfb(encrypted=True),
        "Bảng tính được đặt mật khẩu. Hãy gỡ mật khẩu trong Excel (Tệp, Thông tin, Bảo vệ sổ làm việc, "
        "Mã hóa bằng mật khẩu), lưu lại rồi thử lại.",
    ),
    "an .xls renamed": (
        lambda: cfb(encrypted=False),
        "Tệp là bảng tính Excel 97-2003 (.xls). Hãy mở tệp trong Excel, lưu dưới dạng "
        "Excel Workbook (.xlsx) rồi thử lại.",
    ),
    "a zip that is not a workbook": (
        lambda: rewrite(good(), {"xl/workbook.xml": None}),
        "Tệp không phải là tệp Excel (.xlsx). Hãy lưu tệp dưới dạng Excel Workbook rồi thử lại.",
    ),
    "a workbook missing a sheet": (
        lambda: rewrite(good(), {SHEET: None}),
        "Bảng tính bị hỏng hoặc thiếu phần nên không đọc được. Hãy mở tệp trong Excel, lưu lại dưới dạng "
        "Excel Workbook (.xlsx) rồi thử lại.",
    ),
    "a sheet that is not well-formed": (
        lambda: rewrite(good(), {SHEET: sheet_xml(b"<row r='2'><c><v>1</c></row>")}),
        "Bảng tính bị hỏng hoặc thiếu phần nên không đọc được. Hãy mở tệp trong Excel, lưu lại dưới dạng "
        "Excel Workbook (.xlsx) rồi thử lại.",
    ),
    "not a zip": (
        lambda: b"ma_hoc_sinh,ho_ten\nHS001,An\n",
        "Tệp không phải là tệp Excel (.xlsx). Hãy lưu tệp dưới dạng Excel Workbook rồi thử lại.",
    ),
}


def refused_reason(actor, school, data: bytes) -> str:
    before = row_counts()
    with translation.override("vi"), pytest.raises(SchoolImportError) as caught:
        school_data_import(actor=actor, school=school, data=data, filename="doc-hai.xlsx")
    assert row_counts() == before
    [problem] = caught.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("", 0, "")
    return problem.message


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_workbook_is_refused_with_its_reason(school_admin, in_school, case):
    build, reason = HOSTILE[case]
    assert refused_reason(school_admin, in_school, build()) == reason


@pytest.mark.parametrize("case", HOSTILE)
def test_the_import_page_answers_a_hostile_workbook_with_400_and_the_reason(
    client_as, school_admin, school, case
):
    build, reason = HOSTILE[case]
    upload = SimpleUploadedFile("doc-hai.xlsx", build())
    response = client_as(school_admin).post(
        f"/truong/{school.code}/du-lieu/nhap/", {"file": upload}, HTTP_ACCEPT_LANGUAGE="vi"
    )
    assert response.status_code == 400
    assert [p.message for p in response.context["problems"]] == [reason]


def test_an_upload_over_the_size_limit_is_refused_without_being_read_whole(client_as, school_admin, school):
    upload = SimpleUploadedFile("lon.xlsx", good() + b"\0" * (6 * 1024 * 1024))
    response = client_as(school_admin).post(
        f"/truong/{school.code}/du-lieu/nhap/", {"file": upload}, HTTP_ACCEPT_LANGUAGE="vi"
    )
    assert response.status_code == 400
    assert [p.message for p in response.context["problems"]] == ["Tệp quá lớn: tệp vượt quá 5 MB."]


def test_the_unpacked_total_is_limited(school_admin, in_school, settings):
    settings.HOCBA_IMPORT_MAX_TOTAL_BYTES = 64 * 1024
    data = rewrite(good(), {"docProps/custom.xml": b"<x>" + bytes(range(48, 58)) * 8000 + b"</x>"})
    assert refused_reason(school_admin, in_school, data) == (
        "Tệp quá lớn: bảng tính khi giải nén vượt quá 1 MB."  # limits are shown in whole MB, at least 1
    )


def test_a_sheet_with_more_rows_than_the_limit_is_refused(school_admin, in_school, settings):
    settings.HOCBA_IMPORT_MAX_ROWS = 50
    rows = [student_row(f"HX{n:03d}", "Học Sinh", "Nam", "01/01/2014", temporary=f"T{n}") for n in range(51)]
    with translation.override("vi"), pytest.raises(SchoolImportError) as caught:
        school_data_import(
            actor=school_admin,
            school=in_school,
            data=xlsx({"HocSinh": [list(STUDENT_HEADER), *rows]}),
            filename="x",
        )
    assert [(p.sheet, p.row, p.column, p.message) for p in caught.value.problems] == [
        ("HocSinh", 0, "", "Tệp quá lớn: trang có hơn 50 dòng.")
    ]


def test_a_sheet_of_blank_rows_is_read_no_further_than_a_run_of_blank_rows(school_admin, in_school):
    # 300,000 blank rows after one class: before the limit, reading them took minutes.
    data = rewrite(good(), {SHEET: sheet_xml(class_row(2, "7A", 7) + blank_rows(300_000, first=3))})
    started = time.monotonic()
    sheets = _workbook_read(data, "trang-trang.xlsx")
    assert time.monotonic() - started < 10
    assert [(number, row["ten_lop"]) for number, row in sheets["Lop"].rows] == [(2, "7A")]


def test_rows_after_a_long_run_of_blank_rows_are_not_read(school_admin, in_school, settings):
    settings.HOCBA_IMPORT_MAX_BLANK_RUN = 10
    rows = class_row(2, "7A", 7) + blank_rows(9, first=3) + class_row(12, "7B", 7)
    rows += blank_rows(10, first=13) + class_row(23, "7C", 7)
    sheets = _workbook_read(rewrite(good(), {SHEET: sheet_xml(rows)}), "x.xlsx")
    assert [row["ten_lop"] for _n, row in sheets["Lop"].rows] == ["7A", "7B"]


def test_cells_beyond_the_column_limit_are_not_read(school_admin, in_school, settings):
    settings.HOCBA_IMPORT_MAX_COLUMNS = 3
    wide = b'<row r="2"><c r="A2" t="inlineStr"><is><t>7A</t></is></c><c r="B2"><v>7</v></c>'
    wide += b"".join(b'<c r="%s2"><v>1</v></c>' % column for column in (b"D", b"Z", b"XFD")) + b"</row>"
    only_classes = xlsx({"Lop": [["ten_lop", "khoi"]]})
    sheets = _workbook_read(rewrite(only_classes, {SHEET: sheet_xml(wide)}), "x.xlsx")
    assert [row for _n, row in sheets["Lop"].rows] == [{"ten_lop": "7A", "khoi": 7}]
