"""The canonical XML of a year record: one record, one sequence of bytes, always.

The tree is built in the schema's fixed element order and serialised as Canonical XML 1.0 (no
XML declaration, UTF-8, attributes in canonical order, no insignificant whitespace, empty elements
as start-end pairs). The bytes are therefore already in the form a signature digests, dates are
ISO 8601, booleans "true"/"false", averages exactly one decimal.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from transcripts.schema import NAMESPACE, year_record_schema

from .records import (
    DocumentError,
    PrimaryPart,
    QualityRow,
    Ratings,
    SecondaryPart,
    StudentIdentity,
    YearRecord,
    year_record_check,
)

_NSMAP = {None: NAMESPACE}


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _add(parent: etree._Element, name: str, value: str | int | bool | dt.date) -> etree._Element:
    """Append <name>value</name>, the value written in its one canonical spelling."""
    element = etree.SubElement(parent, _q(name))
    if isinstance(value, bool):
        element.text = "true" if value else "false"
    elif isinstance(value, dt.date):
        element.text = value.isoformat()
    else:
        element.text = str(value)
    return element


def _add_optional(parent: etree._Element, name: str, value: str | int | bool | dt.date | None) -> None:
    """Append <name>value</name> unless the value is None (an optional element left out)."""
    if value is not None:
        _add(parent, name, value)


def year_record_tree(record: YearRecord) -> etree._Element:
    """The record as an lxml tree, root <hocba>, with an empty <chuky> ready for signatures."""
    year_record_check(record)
    root = etree.Element(_q("hocba"), nsmap=_NSMAP)
    content = etree.SubElement(root, _q("thongtinhocba"), Id=record.content_id)
    _add(content, "madinhdanhhocba", record.record_id)
    _add(content, "phienban", record.version)
    _add(content, "trangthaithongtinhocba", record.status)
    if record.supersedes is not None:
        superseded = _group(content, "thaythe")
        _add(superseded, "madinhdanhhocba", record.supersedes.record_id)
        _add(superseded, "phienban", record.supersedes.version)
    issuer = record.issuer
    _add(content, "masogd", issuer.department_code)
    _add(content, "tensogd", issuer.department_name)
    _add(content, "matruong", issuer.school_code)
    _add(content, "tentruong", issuer.school_name)
    _add(content, "diadanhphathanh", issuer.place_of_issue)
    _add(content, "ngaylap", record.issued_on)
    _add(content, "macaphoc", record.level)
    _add(content, "namhoc", record.school_year)
    _add(content, "makhoi", record.grade)
    _add(content, "tenlop", record.class_name)
    _add(content, "maquydinhdanhgia", record.ruleset)
    _student(_group(content, "hocsinh"), record.student)
    history = _group(content, "quatrinhhoctap")
    _add(history, "namhoc", record.history.school_year)
    _add(history, "tenlop", record.history.class_name)
    _add(history, "tentruong", record.history.school_name)
    _add(history, "sodangbo", record.history.register_number)
    _add_optional(history, "ngaynhaphoc", record.history.enrolled_on)
    if isinstance(record.part, PrimaryPart):
        _primary(_group(content, "tieuhoc"), record.part)
    else:
        _secondary(_group(content, "trunghoc"), record.part)
    signers = _group(content, "nguoiky")
    _add(_group(signers, "giaovienchunhiem"), "hovaten", record.signers.homeroom_teacher)
    board = _group(signers, "giamhieu")
    _add(board, "hovaten", record.signers.principal)
    _add(board, "chucvugiamhieu", record.signers.principal_title)
    _add(_group(signers, "condau"), "tendonvi", record.signers.seal)
    _group(root, "chuky")
    return root


def year_record_xml(record: YearRecord, *, validate: bool = True) -> bytes:
    """The canonical XML bytes of the record, checked against the XSD unless told not to.

    Raises DocumentError("invalid") when the record breaks the schema or a rule between fields;
    `validate=False` exists for tests that need to show the schema refusing a bad document.
    """
    try:
        root = year_record_tree(record)
    except ValueError as error:  # lxml refuses control characters that XML cannot carry
        if isinstance(error, DocumentError):
            raise
        raise DocumentError("invalid", f"Not representable in XML: {error}") from error
    if validate:
        schema = year_record_schema()
        if not schema.validate(root):
            raise DocumentError("invalid", f"Not a valid year record: {schema.error_log.last_error}")
    return etree.tostring(root, method="c14n")


def _group(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, _q(name))


def _student(parent: etree._Element, student: StudentIdentity) -> None:
    _add(parent, "mahocsinh", student.student_code)
    _add_optional(parent, "madinhdanhcanhan", student.personal_id)
    _add_optional(parent, "madinhdanhtam", student.temporary_code or None)
    _add(parent, "daxacthucdinhdanh", student.personal_id_verified)
    _add(parent, "hovaten", student.full_name)
    _add(parent, "gioitinh", student.sex)
    _add(parent, "ngaysinh", student.date_of_birth)
    _add(parent, "noisinh", student.place_of_birth)
    _add(parent, "dantoc", student.ethnicity)
    _add(parent, "quoctich", student.nationality)
    _add(parent, "quequan", student.home_town)
    _add(parent, "noiohiennay", student.current_address)
    _add(parent, "hotencha", student.father_name)
    _add(parent, "hotenme", student.mother_name)
    _add(parent, "hotennguoigiamho", student.guardian_name)
    _add(parent, "doituongchinhsach", student.policy_category)
    _add(parent, "cokhuyettatkhongdanhgia", student.disability_exempt)


def _criteria(parent: etree._Element, name: str, rows: tuple[QualityRow, ...]) -> None:
    group = _group(parent, name)
    for row in rows:
        item = _group(group, "tieuchi")
        _add(item, "ma", row.code)
        _add(item, "ten", row.name)
        _add(item, "mucdatduoc", row.level)
        _add(item, "nhanxet", row.comment)


def _primary(parent: etree._Element, part: PrimaryPart) -> None:
    table = _group(parent, "bangdiem")
    for row in part.subjects:
        subject = _group(table, "monhoc")
        _add(subject, "mamonhoc", row.code)
        _add(subject, "tenmonhoc", row.name)
        _add_optional(subject, "mucdatduoc", row.level)
        _add_optional(subject, "diemktdk", row.test_score)
        _add(subject, "nhanxet", row.comment)
    _criteria(parent, "phamchat", part.qualities)
    _criteria(parent, "nanglucchung", part.general_competencies)
    _criteria(parent, "nanglucdacthu", part.specific_competencies)
    _add(parent, "ketquagiaoduc", part.result)
    for award in part.awards:
        _add(parent, "khenthuong", award)
    _add(parent, "dahthanhctrinhlophoc", part.completed_grade)
    _add_optional(parent, "dahthanhctrinhtieuhoc", part.completed_primary)


def _ratings(parent: etree._Element, name: str, ratings: Ratings) -> None:
    group = _group(parent, name)
    _add(group, "hocky1", ratings.term1)
    _add(group, "hocky2", ratings.term2)
    _add(group, "canam", ratings.year)
    _add_optional(group, "danhgialai", ratings.after_reassessment)


def _secondary(parent: etree._Element, part: SecondaryPart) -> None:
    table = _group(parent, "bangdiem")
    for row in part.subjects:
        subject = _group(table, "monhoc")
        _add(subject, "mamonhoc", row.code)
        _add(subject, "tenmonhoc", row.name)
        _add_optional(subject, "hocky1", row.term1)
        _add_optional(subject, "hocky2", row.term2)
        _add_optional(subject, "canam", row.year)
        _add_optional(subject, "danhgialai", row.after_reassessment)
        _add(subject, "nhanxet", row.comment)
        _add(subject, "giaovienmonhoc", row.teacher)
    _ratings(parent, "renluyen", part.conduct)
    _ratings(parent, "hoctap", part.learning)
    _add(parent, "sobuoinghi", part.absences)
    _add(parent, "duoclenlop", part.promoted)
    _add(parent, "ketqualenlop", part.outcome)
    _add_optional(parent, "dahthanhctrinhcaphoc", part.completed_level)
    _add_optional(parent, "danhhieu", part.title)
    for award in part.awards:
        _add(parent, "khenthuong", award)
    for certificate in part.certificates:
        item = _group(parent, "chungchi")
        _add(item, "ten", certificate.name)
        _add(item, "loai", certificate.grade)
    _add(parent, "nhanxetgvcn", part.homeroom_comment)
