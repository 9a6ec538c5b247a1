"""The year record snapshot: what one student's transcript shows for one school year, as plain data.

Frozen dataclasses, no ORM objects: the snapshot is taken once (names, codes and titles as they are
at that moment) and never follows later changes to a student, a school or a teacher. Text is
normalised on construction (Unicode NFC, "\\n" line ends) so that the same words typed on two
keyboards make the same record, and the same record always makes the same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# The level (cấp học) and the grades it covers; continuing education (GDTX) teaches THCS and THPT.
GRADES_BY_LEVEL = {
    "primary": range(1, 6),
    "lower_secondary": range(6, 10),
    "upper_secondary": range(10, 13),
    "continuing": range(6, 13),
}
STATUS_NEW = "new"
STATUS_CORRECTION = "correction"

_CODE_PART = re.compile(r"[A-Za-z0-9_\-]{1,31}")
_SCHOOL_YEAR = re.compile(r"\d{4}-\d{4}")
_TENTH = Decimal("0.1")


class DocumentError(ValueError):
    """A year record that cannot be built, or bytes that are not an acceptable year record.

    `code` says which, for callers that show their own (translated) message: "not_xml", "too_large",
    "dtd", "not_a_year_record", "invalid". The message is English, for logs and developers.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def year_record_id(*, school_code: str, student_code: str, school_year: str) -> str:
    """The stable record id (madinhdanhhocba): "<matruong>.<mahocsinh>.<namhoc>".

    The same for every version of the record. Dots separate the parts because the codes themselves
    may contain '-' and '_', so "a-b" + "c" and "a" + "b-c" cannot collide.
    """
    for part in (school_code, student_code):
        if not _CODE_PART.fullmatch(part):
            raise DocumentError("invalid", f"Not usable in a record id: {part!r}")
    if not _SCHOOL_YEAR.fullmatch(school_year):
        raise DocumentError("invalid", f"Not a school year: {school_year!r}")
    return f"{school_code}.{student_code}.{school_year}"


def _clean(value: str) -> str:
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))


def subject_value(value: Decimal | int | str | None) -> str | None:
    """A secondary subject value as the record writes it: "8.5", "10.0", "Đ", "CĐ" or None.

    A number keeps exactly one decimal; one that has more is refused rather than rounded, since the
    rules have already rounded it (an unrounded value here is a bug upstream). Range checks are the
    schema's (so 10.5 is written, then refused by validation).
    """
    if value is None:
        return None
    if isinstance(value, bool | float):
        raise TypeError(f"Subject values are Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, str):
        value = _clean(value.strip())
        if value in ("Đ", "CĐ"):
            return value
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value  # neither a number nor a grade: left for the schema to refuse
    else:
        number = Decimal(value)
    tenths = number.quantize(_TENTH)
    if tenths != number:
        raise DocumentError("invalid", f"A subject value has one decimal at most: {value!r}")
    if tenths == 0:
        tenths = abs(tenths)  # never "-0.0"
    return f"{tenths:.1f}"


class _Normalised:
    """Normalises every text field (and tuple of texts) of a frozen dataclass on construction."""

    __slots__ = ()

    def __post_init__(self) -> None:
        # mypy cannot see that this mixin is only ever a base of dataclasses.
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, str):
                object.__setattr__(self, f.name, _clean(value))
            elif isinstance(value, list | tuple):
                object.__setattr__(self, f.name, tuple(_clean(v) if isinstance(v, str) else v for v in value))


@dataclass(frozen=True, slots=True)
class Supersedes(_Normalised):
    """The version a correction replaces."""

    record_id: str
    version: int


@dataclass(frozen=True, slots=True)
class Issuer(_Normalised):
    """Who issues the record: the Department (masogd) and the school (matruong), and where."""

    department_code: str
    department_name: str
    school_code: str
    school_name: str
    place_of_issue: str  # diadanhphathanh: "Lào Cai" in "Lào Cai, ngày ... tháng ... năm ..."


@dataclass(frozen=True, slots=True)
class StudentIdentity(_Normalised):
    """The student as on the birth certificate (domain.md §4), at snapshot time.

    At least one of `personal_id` (the 12-digit number) and `temporary_code` (issued by the
    province) is given; `personal_id_verified` says whether the number has been verified, without
    which the record is signed but held back from the Ministry (domain.md §1).
    """

    student_code: str
    full_name: str
    sex: int  # QCVN 109: 0 unknown, 1 male, 2 female
    date_of_birth: dt.date
    personal_id: str | None = None
    temporary_code: str = ""
    personal_id_verified: bool = False
    place_of_birth: str = ""
    ethnicity: str = ""
    nationality: str = "Việt Nam"
    home_town: str = ""
    current_address: str = ""
    father_name: str = ""
    mother_name: str = ""
    guardian_name: str = ""
    policy_category: str = ""
    disability_exempt: bool = False  # cokhuyettatkhongdanhgia

    def __post_init__(self) -> None:
        _Normalised.__post_init__(self)
        if not self.personal_id:
            object.__setattr__(self, "personal_id", None)  # "" and None both mean "no number"


@dataclass(frozen=True, slots=True)
class StudyHistoryLine(_Normalised):
    """This year's line of "Quá trình học tập": school year, class, school, register number."""

    school_year: str
    class_name: str
    school_name: str
    register_number: str = ""  # số đăng bộ
    enrolled_on: dt.date | None = None  # ngày nhập học / chuyển đến


@dataclass(frozen=True, slots=True)
class PrimarySubjectRow(_Normalised):
    """TT27: a subject's end-of-year level (T/H/C), test score (1-10) and comment.

    `level` None: the pupil is exempt from assessment in it; `test_score` None: no periodic test.
    """

    code: str
    name: str
    level: str | None
    test_score: int | None = None
    comment: str = ""


@dataclass(frozen=True, slots=True)
class QualityRow(_Normalised):
    """TT27: a quality (phẩm chất) or competency (năng lực) with its level (T/Đ/C) and comment."""

    code: str
    name: str
    level: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class PrimaryPart(_Normalised):
    """The primary (TT27) year page."""

    subjects: tuple[PrimarySubjectRow, ...]
    qualities: tuple[QualityRow, ...]
    general_competencies: tuple[QualityRow, ...]
    specific_competencies: tuple[QualityRow, ...]
    result: str  # HTXS / HTT / HT / CHT
    completed_grade: bool  # dahthanhctrinhlophoc
    completed_primary: bool | None = None  # dahthanhctrinhtieuhoc, grade 5 only
    awards: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SecondarySubjectRow(_Normalised):
    """TT22/TT43: a subject's term I, term II and year values, and after re-assessment if any.

    Values are averages with one decimal ("8.5") or comment grades ("Đ", "CĐ"); a Decimal or int is
    accepted and written the same way. None: exempt from assessment.
    """

    code: str
    name: str
    term1: str | None
    term2: str | None
    year: str | None
    after_reassessment: str | None = None
    comment: str = ""
    teacher: str = ""  # the subject teacher (giáo viên môn học), as at snapshot time

    def __post_init__(self) -> None:
        for name in ("term1", "term2", "year", "after_reassessment"):
            object.__setattr__(self, name, subject_value(getattr(self, name)))
        _Normalised.__post_init__(self)


@dataclass(frozen=True, slots=True)
class Ratings(_Normalised):
    """TT22/TT43 learning (học tập) or conduct (rèn luyện) per term and year: T / K / Đ / CĐ."""

    term1: str
    term2: str
    year: str
    after_reassessment: str | None = None  # after summer re-training or re-assessment


@dataclass(frozen=True, slots=True)
class Certificate(_Normalised):
    """A certificate (chứng chỉ) and its grade (loại)."""

    name: str
    grade: str = ""


@dataclass(frozen=True, slots=True)
class SecondaryPart(_Normalised):
    """The secondary (TT22/TT43) year pages A and B."""

    subjects: tuple[SecondarySubjectRow, ...]
    conduct: Ratings
    learning: Ratings
    absences: int
    promoted: bool  # duoclenlop: the final decision, after any re-assessment
    outcome: str  # the rules' outcome: promoted / summer_training / reassessment / repeat
    homeroom_comment: str = ""
    completed_level: bool | None = None  # last grade of THCS / THPT only
    title: str | None = None  # xuat_sac / gioi
    awards: tuple[str, ...] = ()
    certificates: tuple[Certificate, ...] = ()


@dataclass(frozen=True, slots=True)
class Signers(_Normalised):
    """Who is expected to sign, in order, with titles as at snapshot time (design.md §4)."""

    homeroom_teacher: str
    principal: str
    principal_title: str  # chucvugiamhieu: "Hiệu trưởng" or "KT. Hiệu trưởng / Phó Hiệu trưởng"
    seal: str  # the organisation that seals: the school's name on its certificate


@dataclass(frozen=True, slots=True)
class YearRecord(_Normalised):
    """One student's year record, version `version` (design.md §4): the signed document's content."""

    record_id: str  # madinhdanhhocba, see year_record_id()
    version: int
    issuer: Issuer
    issued_on: dt.date  # ngaylap: the date written beside the place of issue
    level: str  # macaphoc
    school_year: str
    grade: int  # makhoi
    class_name: str
    ruleset: str  # the rule set's code (tt27, tt22, tt43, ...)
    student: StudentIdentity
    history: StudyHistoryLine
    part: PrimaryPart | SecondaryPart
    signers: Signers
    supersedes: Supersedes | None = None

    @property
    def status(self) -> str:
        """trangthaithongtinhocba: a first issue, or a correction of the version it supersedes.

        The lifecycle status (signed, issued, acknowledged, superseded, revoked) changes after
        signing, so it lives in the database and the public index, never in the signed bytes.
        """
        return STATUS_NEW if self.supersedes is None else STATUS_CORRECTION

    @property
    def content_id(self) -> str:
        """The Id of the signed content element: unique to this record and version."""
        return f"HB-{self.record_id}-v{self.version}"


def year_record_check(record: YearRecord) -> None:
    """The rules between fields that the schema cannot say; raises DocumentError("invalid")."""
    problems = []
    grades = GRADES_BY_LEVEL.get(record.level)
    if grades is not None and record.grade not in grades:
        problems.append(f"grade {record.grade} is not taught at level {record.level}")
    primary = record.level == "primary"
    if primary != isinstance(record.part, PrimaryPart):
        problems.append(f"level {record.level} does not match a {type(record.part).__name__}")
    if record.supersedes is not None:
        if record.supersedes.record_id != record.record_id:
            problems.append("a correction supersedes a version of the same record")
        if record.supersedes.version >= record.version:
            problems.append("a correction supersedes an earlier version")
    elif record.version != 1:
        problems.append("a version after the first names the version it supersedes")
    student = record.student
    if student.personal_id_verified and not student.personal_id:
        problems.append("a verified personal ID needs the number")
    if not student.personal_id and not student.temporary_code:
        problems.append("a student has a personal ID or a temporary code")
    if record.history.school_year != record.school_year:
        problems.append("the study history line is this school year's")
    if isinstance(record.part, SecondaryPart):
        for row in record.part.subjects:
            kinds = {v in ("Đ", "CĐ") for v in (row.term1, row.term2, row.year) if v is not None}
            if len(kinds) > 1:
                problems.append(f"subject {row.code} mixes scores and comment grades")
    if problems:
        raise DocumentError("invalid", "Inconsistent year record: " + "; ".join(problems))
