"""Reading a year record back from bytes that may come from anyone (an upload, a PDF attachment).

The parser is hardened: no DTD (refused outright, so no entity expansion and no external
entities), no network, no huge trees, a size limit, UTF-8 only; then the XSD decides whether the
document is a year record at all. Signatures in <chuky> are left to the verifier.
"""

from __future__ import annotations

import datetime as dt
import threading

from lxml import etree

from transcripts.schema import NAMESPACE, year_record_schema

from .records import (
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
    year_record_check,
)

# A signed year record is some tens of kilobytes; anything near this limit is not one.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024


_local = threading.local()


def _parser() -> etree.XMLParser:
    # One parser per thread (lxml parsers must not be shared between threads), reused: making one
    # costs a tenth of parsing a record (signing.profile parses one per signature).
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            dtd_validation=False,
            load_dtd=False,
            huge_tree=False,
        )
    return parser


def year_record_load(xml: bytes) -> etree._Element:
    """Parse and validate untrusted bytes; the root <hocba>, or DocumentError saying why not."""
    if not isinstance(xml, bytes):
        raise TypeError("year_record_load takes bytes")
    if len(xml) > MAX_DOCUMENT_BYTES:
        raise DocumentError("too_large", f"Larger than {MAX_DOCUMENT_BYTES} bytes: not a year record")
    # UTF-16 and UTF-32 text has NUL bytes; UTF-8 never does. Refusing them first makes the DTD
    # check below a plain byte search that no other encoding can hide from.
    if b"\x00" in xml:
        raise DocumentError("not_xml", "Not UTF-8 XML")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise DocumentError("dtd", "Documents with a DTD or entity declarations are refused")
    try:
        root = etree.fromstring(xml, _parser())
    except etree.XMLSyntaxError as error:
        raise DocumentError("not_xml", f"Not well-formed XML: {error}") from error
    docinfo = root.getroottree().docinfo
    # Belt and braces: any DTD that got past the byte search (an encoding we did not foresee).
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DocumentError("dtd", "Documents with a DTD or entity declarations are refused")
    if (docinfo.encoding or "UTF-8").upper() != "UTF-8":
        raise DocumentError("not_xml", "Not UTF-8 XML")
    if root.tag != f"{{{NAMESPACE}}}hocba":
        raise DocumentError("not_a_year_record", f"Not a year record of this format: {root.tag}")
    schema = year_record_schema()
    if not schema.validate(root):
        raise DocumentError("invalid", f"Not a valid year record: {schema.error_log.last_error}")
    return root


def year_record_parse(xml: bytes) -> YearRecord:
    """The record in a year record document (signed or not): the inverse of year_record_xml."""
    return year_record_from_tree(year_record_load(xml))


def year_record_from_tree(root: etree._Element) -> YearRecord:
    """The record of a validated <hocba> tree (see year_record_load)."""
    content = _child(root, "thongtinhocba")
    superseded = _child(content, "thaythe")
    record = YearRecord(
        record_id=_text(content, "madinhdanhhocba"),
        version=int(_text(content, "phienban")),
        supersedes=None
        if superseded is None
        else Supersedes(
            record_id=_text(superseded, "madinhdanhhocba"), version=int(_text(superseded, "phienban"))
        ),
        issuer=Issuer(
            department_code=_text(content, "masogd"),
            department_name=_text(content, "tensogd"),
            school_code=_text(content, "matruong"),
            school_name=_text(content, "tentruong"),
            place_of_issue=_text(content, "diadanhphathanh"),
        ),
        issued_on=dt.date.fromisoformat(_text(content, "ngaylap")),
        level=_text(content, "macaphoc"),
        school_year=_text(content, "namhoc"),
        grade=int(_text(content, "makhoi")),
        class_name=_text(content, "tenlop"),
        ruleset=_text(content, "maquydinhdanhgia"),
        student=_student(_child(content, "hocsinh")),
        history=_history(_child(content, "quatrinhhoctap")),
        part=_part(content),
        signers=_signers(_child(content, "nguoiky")),
    )
    if record.status != _text(content, "trangthaithongtinhocba"):
        raise DocumentError("invalid", "The status does not match the superseded version")
    if content.get("Id") != record.content_id:
        raise DocumentError("invalid", f"The content's Id is not {record.content_id}")
    year_record_check(record)
    return record


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _child(parent: etree._Element, name: str) -> etree._Element:
    return parent.find(_q(name))


def _text(parent: etree._Element, name: str) -> str:
    return _child(parent, name).text or ""


def _optional(parent: etree._Element, name: str) -> str | None:
    element = _child(parent, name)
    return None if element is None else (element.text or "")


def _bool(value: str | None) -> bool | None:
    # The schema allows only "true" and "false" (not xs:boolean's 1 and 0).
    return None if value is None else value == "true"


def _texts(parent: etree._Element, name: str) -> tuple[str, ...]:
    return tuple(element.text or "" for element in parent.findall(_q(name)))


def _student(element: etree._Element) -> StudentIdentity:
    return StudentIdentity(
        student_code=_text(element, "mahocsinh"),
        personal_id=_optional(element, "madinhdanhcanhan"),
        temporary_code=_optional(element, "madinhdanhtam") or "",
        personal_id_verified=bool(_bool(_text(element, "daxacthucdinhdanh"))),
        full_name=_text(element, "hovaten"),
        sex=int(_text(element, "gioitinh")),
        date_of_birth=dt.date.fromisoformat(_text(element, "ngaysinh")),
        place_of_birth=_text(element, "noisinh"),
        ethnicity=_text(element, "dantoc"),
        nationality=_text(element, "quoctich"),
        home_town=_text(element, "quequan"),
        current_address=_text(element, "noiohiennay"),
        father_name=_text(element, "hotencha"),
        mother_name=_text(element, "hotenme"),
        guardian_name=_text(element, "hotennguoigiamho"),
        policy_category=_text(element, "doituongchinhsach"),
        disability_exempt=bool(_bool(_text(element, "cokhuyettatkhongdanhgia"))),
    )


def _history(element: etree._Element) -> StudyHistoryLine:
    enrolled_on = _optional(element, "ngaynhaphoc")
    return StudyHistoryLine(
        school_year=_text(element, "namhoc"),
        class_name=_text(element, "tenlop"),
        school_name=_text(element, "tentruong"),
        register_number=_text(element, "sodangbo"),
        enrolled_on=None if enrolled_on is None else dt.date.fromisoformat(enrolled_on),
    )


def _part(content: etree._Element) -> PrimaryPart | SecondaryPart:
    primary = _child(content, "tieuhoc")
    if primary is not None:
        return _primary(primary)
    return _secondary(_child(content, "trunghoc"))


def _criteria(element: etree._Element) -> tuple[QualityRow, ...]:
    return tuple(
        QualityRow(
            code=_text(item, "ma"),
            name=_text(item, "ten"),
            level=_text(item, "mucdatduoc"),
            comment=_text(item, "nhanxet"),
        )
        for item in element.findall(_q("tieuchi"))
    )


def _primary(element: etree._Element) -> PrimaryPart:
    subjects = []
    for row in _child(element, "bangdiem").findall(_q("monhoc")):
        score = _optional(row, "diemktdk")
        subjects.append(
            PrimarySubjectRow(
                code=_text(row, "mamonhoc"),
                name=_text(row, "tenmonhoc"),
                level=_optional(row, "mucdatduoc"),
                test_score=None if score is None else int(score),
                comment=_text(row, "nhanxet"),
            )
        )
    return PrimaryPart(
        subjects=tuple(subjects),
        qualities=_criteria(_child(element, "phamchat")),
        general_competencies=_criteria(_child(element, "nanglucchung")),
        specific_competencies=_criteria(_child(element, "nanglucdacthu")),
        result=_text(element, "ketquagiaoduc"),
        awards=_texts(element, "khenthuong"),
        completed_grade=bool(_bool(_text(element, "dahthanhctrinhlophoc"))),
        completed_primary=_bool(_optional(element, "dahthanhctrinhtieuhoc")),
    )


def _ratings(element: etree._Element) -> Ratings:
    return Ratings(
        term1=_text(element, "hocky1"),
        term2=_text(element, "hocky2"),
        year=_text(element, "canam"),
        after_reassessment=_optional(element, "danhgialai"),
    )


def _secondary(element: etree._Element) -> SecondaryPart:
    subjects = tuple(
        SecondarySubjectRow(
            code=_text(row, "mamonhoc"),
            name=_text(row, "tenmonhoc"),
            term1=_optional(row, "hocky1"),
            term2=_optional(row, "hocky2"),
            year=_optional(row, "canam"),
            after_reassessment=_optional(row, "danhgialai"),
            comment=_text(row, "nhanxet"),
            teacher=_text(row, "giaovienmonhoc"),
        )
        for row in _child(element, "bangdiem").findall(_q("monhoc"))
    )
    return SecondaryPart(
        subjects=subjects,
        conduct=_ratings(_child(element, "renluyen")),
        learning=_ratings(_child(element, "hoctap")),
        absences=int(_text(element, "sobuoinghi")),
        promoted=bool(_bool(_text(element, "duoclenlop"))),
        outcome=_text(element, "ketqualenlop"),
        completed_level=_bool(_optional(element, "dahthanhctrinhcaphoc")),
        title=_optional(element, "danhhieu"),
        awards=_texts(element, "khenthuong"),
        certificates=tuple(
            Certificate(name=_text(item, "ten"), grade=_text(item, "loai"))
            for item in element.findall(_q("chungchi"))
        ),
        homeroom_comment=_text(element, "nhanxetgvcn"),
    )


def _signers(element: etree._Element) -> Signers:
    board = _child(element, "giamhieu")
    return Signers(
        homeroom_teacher=_text(_child(element, "giaovienchunhiem"), "hovaten"),
        principal=_text(board, "hovaten"),
        principal_title=_text(board, "chucvugiamhieu"),
        seal=_text(_child(element, "condau"), "tendonvi"),
    )
