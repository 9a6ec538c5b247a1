"""The year record document: canonical XML, valid against the XSD, byte-stable, parsed back safely.

Pure: no database. Two sample records, written the way the services will snapshot them: a grade 5
pupil (TT27), and a grade 8 student (TT22) re-assessed in one subject and without a personal ID
yet. Validity is checked by lxml and by xmllint (Debian's libxml2-utils), an independent reader.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from transcripts.document import (
    Certificate,
    DocumentError,
    Issuer,
    PrimaryPart,
    PrimarySubjectRow,
    QualityRow,
    Ratings,
    SecondaryPart,
    SecondarySubjectRow,
    Signers,
    StudentIdentity,
    StudyHistoryLine,
    Supersedes,
    YearRecord,
    parsing,
    year_record_id,
    year_record_load,
    year_record_parse,
    year_record_xml,
)
from transcripts.schema import NAMESPACE, XSD_PATH, year_record_schema

DS = "http://www.w3.org/2000/09/xmldsig#"


def make(cls, **kwargs):
    return cls(**kwargs)


def make_reversed(cls, **kwargs):
    """The same object, its keyword arguments given in the opposite order."""
    return cls(**dict(reversed(list(kwargs.items()))))


def issuer(build: Callable = make, school_code: str = "08100501", school_name: str = "") -> Issuer:
    return build(
        Issuer,
        department_code="08",
        department_name="Sở Giáo dục và Đào tạo Lào Cai",
        school_code=school_code,
        school_name=school_name or "Trường Tiểu học Kim Đồng",
        place_of_issue="Lào Cai",
    )


def quality(build: Callable, code: str, name: str, level: str = "T", comment: str = "") -> QualityRow:
    return build(QualityRow, code=code, name=name, level=level, comment=comment)


def primary_record(build: Callable = make) -> YearRecord:
    """Nguyễn Thị Ánh Tuyết, grade 5, Hoàn thành tốt, completing primary school."""
    subjects = [
        ("tieng_viet", "Tiếng Việt", "T", 9, "Đọc diễn cảm, viết đoạn văn mạch lạc."),
        ("toan", "Toán", "T", 10, "Giải toán có lời văn nhanh, chính xác."),
        ("ngoai_ngu_1", "Ngoại ngữ 1 (Tiếng Anh)", "T", 8, ""),
        ("lich_su_dia_li", "Lịch sử và Địa lí", "T", 9, ""),
        ("khoa_hoc", "Khoa học", "T", 8, ""),
        ("tin_hoc_cong_nghe", "Tin học và Công nghệ (Tin học)", "T", 9, ""),
        ("dao_duc", "Đạo đức", "T", None, "Lễ phép, biết giúp đỡ bạn bè."),
        ("giao_duc_the_chat", "Giáo dục thể chất", "T", None, ""),
        ("am_nhac", "Nghệ thuật (Âm nhạc)", "T", None, ""),
        ("hoat_dong_trai_nghiem", "Hoạt động trải nghiệm", "T", None, ""),
    ]
    part = build(
        PrimaryPart,
        subjects=tuple(
            build(PrimarySubjectRow, code=c, name=n, level=lv, test_score=s, comment=cm)
            for c, n, lv, s, cm in subjects
        ),
        qualities=tuple(
            quality(build, c, n)
            for c, n in [
                ("yeu_nuoc", "Yêu nước"),
                ("nhan_ai", "Nhân ái"),
                ("cham_chi", "Chăm chỉ"),
                ("trung_thuc", "Trung thực"),
                ("trach_nhiem", "Trách nhiệm"),
            ]
        ),
        general_competencies=(
            quality(build, "tu_chu_tu_hoc", "Tự chủ và tự học", comment="Tự giác hoàn thành nhiệm vụ."),
            quality(build, "giao_tiep_hop_tac", "Giao tiếp và hợp tác"),
            quality(build, "gqvd_sang_tao", "Giải quyết vấn đề và sáng tạo"),
        ),
        specific_competencies=tuple(
            quality(build, c, n)
            for c, n in [
                ("ngon_ngu", "Ngôn ngữ"),
                ("tinh_toan", "Tính toán"),
                ("khoa_hoc", "Khoa học"),
                ("cong_nghe", "Công nghệ"),
                ("tin_hoc", "Tin học"),
                ("tham_mi", "Thẩm mĩ"),
                ("the_chat", "Thể chất"),
            ]
        ),
        result="HTT",
        awards=("Học sinh Tiêu biểu hoàn thành tốt trong học tập và rèn luyện",),
        completed_grade=True,
        completed_primary=True,
    )
    return build(
        YearRecord,
        record_id="08100501.0810050120190001.2024-2025",
        version=1,
        issuer=issuer(build),
        issued_on=dt.date(2025, 5, 28),
        level="primary",
        school_year="2024-2025",
        grade=5,
        class_name="5A",
        ruleset="tt27",
        student=build(
            StudentIdentity,
            student_code="0810050120190001",
            personal_id="010314001234",
            personal_id_verified=True,
            full_name="Nguyễn Thị Ánh Tuyết",
            sex=2,
            date_of_birth=dt.date(2014, 3, 2),
            place_of_birth="Bệnh viện Đa khoa tỉnh Lào Cai",
            ethnicity="Kinh",
            home_town="Xã Đồng Tuyển, tỉnh Lào Cai",
            current_address="Số 12 đường Hoàng Liên, phường Cốc Lếu, tỉnh Lào Cai",
            father_name="Nguyễn Văn Hùng",
            mother_name="Trần Thị Thu Hà",
        ),
        history=build(
            StudyHistoryLine,
            school_year="2024-2025",
            class_name="5A",
            school_name="Trường Tiểu học Kim Đồng",
            register_number="127/2020",
            enrolled_on=dt.date(2020, 9, 5),
        ),
        part=part,
        signers=build(
            Signers,
            homeroom_teacher="Lê Thị Mỹ Duyên",
            principal="Đặng Quốc Khánh",
            principal_title="Hiệu trưởng",
            seal="Trường Tiểu học Kim Đồng",
        ),
    )


def secondary_record() -> YearRecord:
    """Hoàng Văn Đức, grade 8, re-assessed in Toán in August, no verified personal ID yet."""
    score = SecondarySubjectRow
    part = SecondaryPart(
        subjects=(
            score(
                "toan",
                "Toán",
                Decimal("4.2"),
                Decimal("4.6"),
                Decimal("4.5"),
                Decimal("6.0"),
                "Cần rèn kĩ năng giải phương trình.",
                "Vũ Minh Châu",
            ),
            score(
                "ngu_van", "Ngữ văn", Decimal("6.5"), Decimal("7.0"), Decimal("6.8"), None, "", "Đỗ Thị Hương"
            ),
            score("ngoai_ngu_1", "Ngoại ngữ 1 (Tiếng Anh)", "5.5", "6.1", "5.9", teacher="Bùi Thu Trang"),
            score("khtn", "Khoa học tự nhiên", 5, Decimal("5.4"), Decimal("5.3"), teacher="Ngô Văn Lâm"),
            score("lich_su_dia_li", "Lịch sử và Địa lí", Decimal("7.1"), Decimal("6.9"), Decimal("7.0")),
            score("gdcd", "Giáo dục công dân", Decimal("8.0"), Decimal("8.4"), Decimal("8.3")),
            score("cong_nghe", "Công nghệ", Decimal("7.5"), Decimal("7.8"), Decimal("7.7")),
            score("tin_hoc", "Tin học", Decimal("10.0"), Decimal("9.5"), Decimal("9.7")),
            score("giao_duc_the_chat", "Giáo dục thể chất", "Đ", "Đ", "Đ"),
            score("nghe_thuat", "Nghệ thuật", "Đ", "Đ", "Đ"),
            score("hdtn_hn", "Hoạt động trải nghiệm, hướng nghiệp", "Đ", "Đ", "Đ"),
            score("gddp", "Nội dung giáo dục của địa phương", "Đ", "Đ", "Đ"),
        ),
        conduct=Ratings("K", "K", "K"),
        learning=Ratings("Đ", "CĐ", "CĐ", after_reassessment="Đ"),
        absences=7,
        promoted=True,
        outcome="reassessment",
        awards=("Giải Ba Hội khỏe Phù Đổng cấp xã",),
        certificates=(Certificate("Chứng chỉ Tiếng Anh A2", "Khá"),),
        homeroom_comment="Em ngoan, lễ phép.\nCần cố gắng hơn ở môn Toán.",
    )
    return YearRecord(
        record_id=year_record_id(
            school_code="08200302", student_code="0820030220170042", school_year="2024-2025"
        ),
        version=2,
        supersedes=Supersedes("08200302.0820030220170042.2024-2025", 1),
        issuer=issuer(school_code="08200302", school_name="Trường THCS Lê Quý Đôn"),
        issued_on=dt.date(2025, 8, 20),
        level="lower_secondary",
        school_year="2024-2025",
        grade=8,
        class_name="8C",
        ruleset="tt22",
        student=StudentIdentity(
            student_code="0820030220170042",
            temporary_code="TAM-08-000123",
            full_name="Hoàng Văn Đức",
            sex=1,
            date_of_birth=dt.date(2011, 11, 30),
            place_of_birth="Xã Bản Hồ, tỉnh Lào Cai",
            ethnicity="Mông",
            guardian_name="Hoàng Thị Mỷ",
            policy_category="Học sinh dân tộc thiểu số ở vùng đặc biệt khó khăn",
        ),
        history=StudyHistoryLine("2024-2025", "8C", "Trường THCS Lê Quý Đôn, tỉnh Lào Cai"),
        part=part,
        signers=Signers(
            homeroom_teacher="Trịnh Thị Ngọc Ánh",
            principal="Phạm Thị Hồng Nhung",
            principal_title="KT. Hiệu trưởng / Phó Hiệu trưởng",
            seal="Trường THCS Lê Quý Đôn",
        ),
    )


RECORDS = {"primary": primary_record, "secondary": secondary_record}


def xmllint(tmp_path: Path, xml: bytes) -> subprocess.CompletedProcess:
    """Validate with xmllint, the reader outside our code; needs Debian's libxml2-utils."""
    if shutil.which("xmllint") is None:
        pytest.fail("xmllint is missing: apt-get install libxml2-utils")
    path = tmp_path / "record.xml"
    path.write_bytes(xml)
    return subprocess.run(
        ["xmllint", "--noout", "--nonet", "--schema", str(XSD_PATH), str(path)],  # noqa: S607 (on PATH)
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def replace_part(record: YearRecord, **changes) -> YearRecord:
    return dataclasses.replace(record, part=dataclasses.replace(record.part, **changes))


def replace_student(record: YearRecord, **changes) -> YearRecord:
    return dataclasses.replace(record, student=dataclasses.replace(record.student, **changes))


@pytest.mark.parametrize("kind", RECORDS)
def test_the_xml_is_valid_against_the_xsd_for_lxml_and_for_xmllint(kind, tmp_path):
    xml = year_record_xml(RECORDS[kind]())

    assert year_record_schema().validate(etree.fromstring(xml))
    result = xmllint(tmp_path, xml)
    assert result.returncode == 0, result.stderr
    assert "validates" in result.stderr


@pytest.mark.parametrize("kind", RECORDS)
def test_the_same_record_gives_the_same_bytes_every_time(kind):
    assert year_record_xml(RECORDS[kind]()) == year_record_xml(RECORDS[kind]())


def test_keyword_arguments_given_in_another_order_give_the_same_bytes():
    assert primary_record(make_reversed) == primary_record(make)
    assert year_record_xml(primary_record(make_reversed)) == year_record_xml(primary_record(make))


def test_composed_and_decomposed_vietnamese_and_crlf_line_ends_give_the_same_bytes():
    record = secondary_record()
    typed_elsewhere = replace_student(record, full_name=unicodedata.normalize("NFD", "Hoàng Văn Đức"))
    typed_elsewhere = replace_part(
        typed_elsewhere, homeroom_comment="Em ngoan, lễ phép.\r\nCần cố gắng hơn ở môn Toán."
    )

    assert typed_elsewhere == record
    assert year_record_xml(typed_elsewhere) == year_record_xml(record)


@pytest.mark.parametrize("kind", RECORDS)
def test_parsing_the_xml_gives_back_an_equal_record(kind):
    record = RECORDS[kind]()

    parsed = year_record_parse(year_record_xml(record))

    assert parsed == record
    assert year_record_xml(parsed) == year_record_xml(record)


def test_the_xml_is_canonical_utf8_with_the_content_id_and_an_empty_signature_container():
    record = secondary_record()
    xml = year_record_xml(record)

    assert xml.startswith(b'<hocba xmlns="urn:hocbaso:year-record:1.0"><thongtinhocba Id="HB-08200302.')
    assert xml.endswith(b"</thongtinhocba><chuky></chuky></hocba>")
    assert b"><" in xml and b">\n<" not in xml  # no pretty-printing whitespace between elements
    assert "<hovaten>Hoàng Văn Đức</hovaten>".encode() in xml
    assert b"<hocky1>4.2</hocky1><hocky2>4.6</hocky2><canam>4.5</canam><danhgialai>6.0</danhgialai>" in xml
    assert b"<khtn>" not in xml and b"<hocky1>5.0</hocky1>" in xml  # the int 5 is written 5.0
    assert b"<madinhdanhcanhan>" not in xml and b"<madinhdanhtam>TAM-08-000123</madinhdanhtam>" in xml
    assert f'Id="{record.content_id}"'.encode() in xml
    assert etree.tostring(etree.fromstring(xml), method="c14n") == xml  # already in canonical form


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("primary", lambda r: replace_student(r, full_name="Nguyễn Thị Ánh Tuyếtt")),
        ("primary", lambda r: replace_student(r, date_of_birth=dt.date(2014, 3, 3))),
        ("primary", lambda r: dataclasses.replace(r, version=2, supersedes=Supersedes(r.record_id, 1))),
        ("primary", lambda r: replace_part(r, awards=())),
        ("secondary", lambda r: replace_part(r, absences=8)),
        (
            "secondary",
            lambda r: dataclasses.replace(
                r, signers=dataclasses.replace(r.signers, principal_title="Hiệu trưởng")
            ),
        ),
        (
            "secondary",
            lambda r: replace_part(
                r,
                subjects=(
                    dataclasses.replace(r.part.subjects[0], after_reassessment="5.9"),
                    *r.part.subjects[1:],
                ),
            ),
        ),
    ],
)
def test_changing_one_field_changes_the_bytes(kind, change):
    record = RECORDS[kind]()

    assert year_record_xml(change(record)) != year_record_xml(record)


INVALID = {
    "a score of 10.5": (
        lambda: replace_part(
            secondary_record(),
            subjects=(dataclasses.replace(secondary_record().part.subjects[0], year=Decimal("10.5")),),
        ),
        "canam",
    ),
    "a personal ID of 11 digits": (
        lambda: replace_student(primary_record(), personal_id="01031400123"),
        "madinhdanhcanhan",
    ),
    "sex 3": (lambda: replace_student(primary_record(), sex=3), "gioitinh"),
    "a primary test score of 0": (
        lambda: replace_part(
            primary_record(), subjects=(dataclasses.replace(primary_record().part.subjects[0], test_score=0),)
        ),
        "diemktdk",
    ),
    "an empty name": (lambda: replace_student(primary_record(), full_name=""), "hovaten"),
}


@pytest.mark.parametrize("case", INVALID)
def test_the_schema_refuses_invalid_data_for_lxml_and_for_xmllint(case, tmp_path):
    build, element = INVALID[case]
    record = build()
    xml = year_record_xml(record, validate=False)

    schema = year_record_schema()
    assert not schema.validate(etree.fromstring(xml))
    assert f"}}{element}'" in schema.error_log.last_error.message
    result = xmllint(tmp_path, xml)
    assert result.returncode != 0, result.stderr
    assert f"}}{element}'" in result.stderr and "fails to validate" in result.stderr
    with pytest.raises(DocumentError) as refused:
        year_record_xml(record)
    assert refused.value.code == "invalid"


def test_a_subject_value_with_two_decimals_is_refused_not_rounded():
    with pytest.raises(DocumentError, match="one decimal"):
        SecondarySubjectRow("toan", "Toán", Decimal("6.55"), "6.5", "6.5")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: dataclasses.replace(r, level="lower_secondary"), "does not match"),
        (lambda r: dataclasses.replace(r, grade=6), "not taught"),
        (lambda r: dataclasses.replace(r, version=2), "names the version it supersedes"),
        (lambda r: replace_student(r, personal_id=None), "verified personal ID"),
    ],
)
def test_a_record_whose_fields_contradict_each_other_is_refused(change, problem):
    with pytest.raises(DocumentError, match=problem):
        year_record_xml(change(primary_record()))


def test_the_record_id_is_school_student_and_year_and_refuses_a_part_it_cannot_separate():
    assert year_record_id(school_code="t-th-a", student_code="HS_01", school_year="2025-2026") == (
        "t-th-a.HS_01.2025-2026"
    )
    with pytest.raises(DocumentError):
        year_record_id(school_code="t.th", student_code="HS01", school_year="2025-2026")


def test_a_signed_document_still_validates_and_parses_to_the_same_record():
    record = secondary_record()
    root = etree.fromstring(year_record_xml(record))
    signatures = root.find(f"{{{NAMESPACE}}}chuky")
    for n in (1, 2, 3):  # stand-ins for the three XAdES signatures of the next step
        etree.SubElement(signatures, f"{{{DS}}}Signature", Id=f"CK{n}", nsmap={"ds": DS})

    signed = etree.tostring(root, method="c14n")

    assert year_record_parse(signed) == record


def test_appending_signatures_leaves_the_signed_content_byte_for_byte_unchanged():
    """What lets each signature stay valid as the next is added (transcripts.document docstring)."""
    record = primary_record()
    root = etree.fromstring(year_record_xml(record))

    def content_c14n() -> bytes:
        return etree.tostring(root.find(f"{{{NAMESPACE}}}thongtinhocba"), method="c14n", exclusive=True)

    before = content_c14n()
    signatures = root.find(f"{{{NAMESPACE}}}chuky")
    first = etree.SubElement(signatures, f"{{{DS}}}Signature", Id="CK1", nsmap={"ds": DS})
    first_before = etree.tostring(first, method="c14n", exclusive=True)
    etree.SubElement(signatures, f"{{{DS}}}Signature", Id="CK2", nsmap={"ds": DS})

    assert content_c14n() == before
    assert etree.tostring(first, method="c14n", exclusive=True) == first_before
    assert before.startswith(f'<thongtinhocba xmlns="{NAMESPACE}" Id="{record.content_id}">'.encode())


def test_a_foreign_element_in_the_signature_container_is_refused():
    root = etree.fromstring(year_record_xml(primary_record()))
    etree.SubElement(root.find(f"{{{NAMESPACE}}}chuky"), f"{{{NAMESPACE}}}ghichu").text = "sửa tay"

    with pytest.raises(DocumentError) as refused:
        year_record_parse(etree.tostring(root))
    assert refused.value.code == "invalid"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE hocba [
 <!ENTITY a "hahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahahaha">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<hocba xmlns="urn:hocbaso:year-record:1.0">&f;</hocba>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE hocba [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<hocba xmlns="urn:hocbaso:year-record:1.0">&secret;</hocba>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE hocba SYSTEM "http://127.0.0.1:9/hocba.dtd">
<hocba xmlns="urn:hocbaso:year-record:1.0"/>"""


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (BILLION_LAUGHS, "dtd"),
        (XXE, "dtd"),
        (EXTERNAL_DTD, "dtd"),
        (
            XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"),
            "not_xml",
        ),
        (XXE.decode().replace('version="1.0"', 'version="1.0" encoding="IBM037"').encode("cp037"), "not_xml"),
        (b"%PDF-1.7 not xml at all", "not_xml"),
        (b"<hocba xmlns='urn:hocbaso:year-record:0.9'/>", "not_a_year_record"),
        (b"<hocba xmlns='urn:hocbaso:year-record:1.0'/>", "invalid"),
        (b"<a>" + b" " * (3 * 1024 * 1024) + b"</a>", "too_large"),
    ],
    ids=[
        "billion laughs",
        "XXE",
        "external DTD",
        "XXE in UTF-16",
        "XXE in EBCDIC",
        "not XML",
        "other format",
        "empty",
        "too large",
    ],
)
def test_the_parser_refuses_hostile_or_foreign_documents_quickly_with_a_clear_error(document, code):
    started = time.perf_counter()

    with pytest.raises(DocumentError) as refused:
        year_record_load(document)

    assert refused.value.code == code
    assert str(refused.value)
    assert time.perf_counter() - started < 1.0


def test_our_parser_settings_never_read_an_external_entity_and_still_see_the_dtd():
    """The second line of defence, should a DTD ever get past the byte search."""
    root = etree.fromstring(XXE, parsing._parser())

    assert root.getroottree().docinfo.internalDTD is not None
    assert "root:" not in etree.tostring(root).decode()  # the file was not read
