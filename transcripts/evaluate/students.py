"""A student's JSON checked against the contract and turned into the rules' dataclasses.

Whatever breaks the contract raises _Invalid, which says what is wrong and where, as a JSON path
built outward as the error rises (`subjects[1].term2.mid: 11 is above 10`). Well-formed secondary
students, nearly all of a batch, go through a fast path that vouches only for what the careful
reader would accept, and reads them straight into the plain numbers of the rules in tenths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Protocol, TypeVar, cast

from django.utils.translation import gettext as _

from transcripts.rules.common import CommentGrade, Rating
from transcripts.rules.tt22 import (
    MIN_REGULAR_SCORES,
    SCORE_MAX,
    SCORE_MIN,
    CommentSubject,
    Ratings,
    ScoredSubject,
    ScoresInTenths,
    SecondaryStudent,
    TermScores,
)
from transcripts.rules.tt27 import (
    TEST_SCORE_MAX,
    TEST_SCORE_MIN,
    PrimaryPupil,
    PrimarySubject,
    QualityLevel,
    SubjectLevel,
)

from .scores import _SCORES, _tenths_by_id

# More absent sessions than there can be (two a day, every day of a year) is a typing error, such
# as 4500 for 45.0, not a student to hold back.
MAX_ABSENCE_SESSIONS = 2 * 366

_RATINGS = {rating.value: rating for rating in Rating}
_COMMENT_GRADES = {grade.value: grade for grade in CommentGrade}
_SUBJECT_LEVELS = {level.value: level for level in SubjectLevel}
_QUALITY_LEVELS = {level.value: level for level in QualityLevel}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_T = TypeVar("_T")


class _Coded(Protocol):
    """A subject as read: its code keys the output."""

    @property
    def code(self) -> str: ...


_S = TypeVar("_S", bound=_Coded)


class _Invalid(Exception):
    """A value that breaks the contract, and where it is (built outward as the error rises)."""

    def __init__(self, problem: str, *path: str | int):
        super().__init__(problem)
        self.problem = problem
        self.path = list(path)

    def under(self, *prefix: str | int) -> _Invalid:
        self.path[0:0] = prefix
        return self

    def location(self) -> str:
        text = ""
        for part in self.path:
            if isinstance(part, int):
                text += f"[{part}]"
            elif _IDENTIFIER.fullmatch(part):
                text += f".{part}" if text else part
            else:
                text += f"[{_show(part)}]"
        return text

    def describe(self) -> str:
        location = self.location()
        return f"{location}: {self.problem}" if location else self.problem

    def describe_student(self, index: int, raw: object) -> str:
        """`students[3] (id "HS0042"): subjects[1].term2.mid: 11 is above 10`."""
        return f"students[{index}]{self.about(raw)}"

    def about(self, raw: object) -> str:
        """describe_student after the position: ` (id "HS0042"): subjects[1].term2.mid: ...`."""
        # The location is JSON, not prose: it stays untranslated, like the field names in it.
        student_id = raw.get("id") if type(raw) is dict else None
        who = ""
        if type(student_id) is str and student_id:
            who = f" (id {_show(student_id)})"
        return f"{who}: {self.describe()}"


def _show(value: object) -> str:
    """A value as it looks in JSON, shortened."""
    text = str(value) if isinstance(value, Decimal) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _object(value: object) -> dict:
    if type(value) is not dict:
        raise _Invalid(_("must be an object"))
    return value


def _list(value: object) -> list:
    if type(value) is not list:
        raise _Invalid(_("must be a list"))
    return value


def _only(obj: dict, allowed: frozenset[str], expected: int) -> None:
    """Refuse fields the contract does not have: a misspelt optional field would go unnoticed."""
    if len(obj) != expected:
        for key in obj:
            if key not in allowed:
                raise _Invalid(_("unexpected field"), key)


def _text(value: object) -> str:
    if type(value) is not str or not value:
        raise _Invalid(_("must be a non-empty string"))
    return value


def _choice(value: object, choices: Mapping[str, _T]) -> _T:
    found = choices.get(value) if type(value) is str else None
    if found is None:
        raise _Invalid(
            _("%(value)s is not one of %(choices)s")
            % {"value": _show(value), "choices": ", ".join(_show(choice) for choice in choices)}
        )
    return found


def _whole(value: object, *, low: int, high: int) -> int:
    """A whole number from low to high; 9.0 is accepted as 9 (spreadsheets write it so)."""
    if type(value) is not int and type(value) not in (Decimal, float):
        raise _Invalid(_("%(value)s is not a number") % {"value": _show(value)})
    value = cast(int | Decimal | float, value)  # its type checked just above
    # Bounds first: int() of a huge Decimal such as 1e999999999 would take forever.
    if value < low:
        raise _Invalid(_("%(value)s is below %(min)s") % {"value": _show(value), "min": low})
    if value > high:
        raise _Invalid(_("%(value)s is above %(max)s") % {"value": _show(value), "max": high})
    if type(value) is not int:
        if int(value) != value:
            raise _Invalid(_("%(value)s is not a whole number") % {"value": _show(value)})
        value = int(value)
    return value


def _score(value: object) -> Decimal:
    """A secondary score: 0-10 with at most one decimal, as its canonical Decimal."""
    if type(value) is not bool:
        try:
            found = _SCORES.get(value)
        except TypeError:  # unhashable: a list or an object
            found = None
        if found is not None:
            return found
    if type(value) not in (int, Decimal, float):
        raise _Invalid(_("%(value)s is not a number") % {"value": _show(value)})
    value = cast(int | Decimal | float, value)  # its type checked just above
    number = Decimal(str(value)) if type(value) is float else Decimal(value)
    found = _SCORES.get(number)  # a float such as 0.1, which equals no Decimal until read as text
    if found is not None:
        return found
    if number < SCORE_MIN:
        raise _Invalid(_("%(value)s is below %(min)s") % {"value": _show(value), "min": SCORE_MIN})
    if number > SCORE_MAX:
        raise _Invalid(_("%(value)s is above %(max)s") % {"value": _show(value), "max": SCORE_MAX})
    raise _Invalid(_("%(value)s has more than one decimal") % {"value": _show(value)})


def _student_id(raw: dict) -> str:
    return _read(raw, "id", _text)


def _subjects(raw: dict, read_subject: Callable[[dict], _S]) -> tuple[_S, ...]:
    """The subjects, each read by read_subject; codes must be unique (they key the output)."""
    subjects = _read(raw, "subjects", _non_empty_list)
    seen: dict[str, int] = {}
    result: list[_S] = []
    for index, item in enumerate(subjects):
        try:
            subject = read_subject(_object(item))
        except _Invalid as exc:
            raise exc.under("subjects", index) from None
        other = seen.setdefault(subject.code, index)
        if other != index:
            raise _Invalid(
                _("%(code)s is also the code of subjects[%(index)d]")
                % {"code": _show(subject.code), "index": other},
                "subjects",
                index,
                "code",
            )
        result.append(subject)
    return tuple(result)


def _non_empty_list(value: object) -> list:
    items = _list(value)
    if not items:
        raise _Invalid(_("must not be empty"))
    return items


def _read(raw: dict, key: str, read: Callable[[object], _T]) -> _T:
    """read(raw[key]), with the key added to the location of any problem."""
    try:
        value = raw[key]
    except KeyError:
        raise _Invalid(_("is missing"), key) from None
    try:
        return read(value)
    except _Invalid as exc:
        raise exc.under(key) from None


# TT22 / TT43

_SECONDARY_STUDENT_FIELDS = frozenset({"id", "subjects", "conduct", "absences"})
_SCORED_FIELDS = frozenset({"code", "scored", "term1", "term2"})
_TERM_FIELDS = frozenset({"regular", "mid", "end"})
_CONDUCT_FIELDS = frozenset({"term1", "term2", "year"})


class _NotPlain(Exception):
    """The fast reader met something it does not vouch for: the careful reader takes over."""


# A well-formed student as _plain_secondary_in_tenths reads it: its id; its subjects in input
# order, each its code (scored) or (code, term I grade, term II grade) (comment only); the scored
# subjects' scores in tenths (tt22.ScoresInTenths); the comment grades of term I and of term II;
# the year's conduct; the absences.
_PlainSecondary = tuple[
    str,
    list[str | tuple[str, CommentGrade, CommentGrade]],
    list[ScoresInTenths],
    list[str],
    list[str],
    Rating,
    int,
]


def _plain_secondary_in_tenths(raw: object) -> _PlainSecondary:
    """A well-formed TT22/TT43 student read straight into plain numbers, for the rules in tenths.

    It accepts only what the careful reader (_secondary_student) would accept, and raises
    _NotPlain, KeyError or TypeError for anything it does not vouch for, valid or not: the careful
    reader takes over (tests/transcripts/test_evaluate_stream.py puts every kind of fault to both).
    """
    if type(raw) is not dict or len(raw) != 4:
        raise _NotPlain
    student_id = raw["id"]
    absences = raw["absences"]
    conduct = raw["conduct"]
    subjects = raw["subjects"]
    if (
        type(student_id) is not str
        or not student_id
        or type(absences) is not int
        or not 0 <= absences <= MAX_ABSENCE_SESSIONS
        or type(conduct) is not dict
        or len(conduct) != 3
        or type(subjects) is not list
        or not subjects
    ):
        raise _NotPlain
    ratings = _RATINGS
    if conduct["term1"] not in ratings or conduct["term2"] not in ratings:  # checked, not used
        raise _NotPlain
    conduct_year = ratings[conduct["year"]]
    grades = _COMMENT_GRADES
    tenths = _tenths_by_id
    layout: list[str | tuple[str, CommentGrade, CommentGrade]] = []
    scored: list[ScoresInTenths] = []
    comments1: list[str] = []
    comments2: list[str] = []
    codes = []
    for subject in subjects:
        if type(subject) is not dict or len(subject) != 4:
            raise _NotPlain
        code = subject["code"]
        kind = subject["scored"]
        if type(code) is not str or not code:
            raise _NotPlain
        codes.append(code)
        if kind is True:
            one = subject["term1"]
            two = subject["term2"]
            if type(one) is not dict or len(one) != 3 or type(two) is not dict or len(two) != 3:
                raise _NotPlain
            regular1 = one["regular"]
            regular2 = two["regular"]
            if (
                type(regular1) is not list
                or len(regular1) < MIN_REGULAR_SCORES
                or type(regular2) is not list
                or len(regular2) < MIN_REGULAR_SCORES
            ):
                raise _NotPlain
            # KeyError for anything that is not a valid score (scores._TENTHS_BY_ID).
            scored.append(
                (
                    sum(map(tenths, map(id, regular1))),
                    len(regular1),
                    tenths(id(one["mid"])),
                    tenths(id(one["end"])),
                    sum(map(tenths, map(id, regular2))),
                    len(regular2),
                    tenths(id(two["mid"])),
                    tenths(id(two["end"])),
                )
            )
            layout.append(code)
        elif kind is False:
            grade1 = grades[subject["term1"]]
            grade2 = grades[subject["term2"]]
            comments1.append(grade1)
            comments2.append(grade2)
            layout.append((code, grade1, grade2))
        else:
            raise _NotPlain
    if len(set(codes)) != len(codes):
        raise _NotPlain  # a code given twice
    return student_id, layout, scored, comments1, comments2, conduct_year, absences


# A student exactly as machine-written batches write it: compact JSON, fields in the contract's
# order, strings without escapes, scores written as 7.5 or 8 (the texts of _TENTHS_BY_TEXT).
# _compact_secondary reads such a student from its text with one match, without the JSON parser
# building its objects; anything else (whitespace, another order, 7.50) is parsed as JSON.
_STRING = r'"([^"\\\x00-\x1f]+)"'  # a JSON string without escapes, non-empty
_NUMBER = r"([0-9.]+)"
_TERM = r'\{"regular":\[([0-9.,]+)\],"mid":' + _NUMBER + r',"end":' + _NUMBER + r"\}"
_SUBJECT = (
    r'\{"code":'
    + _STRING
    + r',"scored":(?:true,"term1":'
    + _TERM
    + r',"term2":'
    + _TERM
    + r'|false,"term1":"(Đ|CĐ)","term2":"(Đ|CĐ)")\}'
)
_SUBJECT_TEXT = re.compile(_SUBJECT)
_SUBJECT_UNCAPTURED = re.sub(r"\((?!\?)", "(?:", _SUBJECT)
_STUDENT_TEXT = re.compile(
    r'\{"id":'
    + _STRING
    + r',"subjects":\[('
    + _SUBJECT_UNCAPTURED
    + r"(?:,"
    + _SUBJECT_UNCAPTURED
    + r")*)\],"
    r'"conduct":\{"term1":"(?:T|K|Đ|CĐ)","term2":"(?:T|K|Đ|CĐ)","year":"(T|K|Đ|CĐ)"\},"absences":(0|[1-9][0-9]{0,3})\}'
)
# The texts of the valid scores, as JSON numbers the parser would read to the same value.
_TENTHS_BY_TEXT = {f"{tenths // 10}.{tenths % 10}": tenths for tenths in range(101)} | {
    str(number): 10 * number for number in range(11)
}


def _compact_secondary(text: str, pos: int) -> tuple[_PlainSecondary, int] | None:
    """The student written compactly at text[pos:], read as _plain_secondary_in_tenths reads its
    JSON, and where its text ends; None for anything else (the JSON parser's then).

    Whatever this accepts is a JSON object that _plain_secondary_in_tenths accepts with the same
    result (tests/transcripts/test_evaluate_stream.py puts thousands of altered texts to both).
    """
    match = _STUDENT_TEXT.match(text, pos)
    if match is None:
        return None
    student_id, subjects, conduct_year, absences_text = match.groups()
    absences = int(absences_text)
    if absences > MAX_ABSENCE_SESSIONS:
        return None
    tenths = _TENTHS_BY_TEXT.__getitem__
    grades = _COMMENT_GRADES
    layout: list[str | tuple[str, CommentGrade, CommentGrade]] = []
    scored: list[ScoresInTenths] = []
    comments1: list[str] = []
    comments2: list[str] = []
    codes = []
    try:
        for code, regular1, mid1, end1, regular2, mid2, end2, grade1, grade2 in _SUBJECT_TEXT.findall(
            subjects
        ):
            codes.append(code)
            if grade1:
                comment1, comment2 = grades[grade1], grades[grade2]
                comments1.append(comment1)
                comments2.append(comment2)
                layout.append((code, comment1, comment2))
                continue
            scores1 = regular1.split(",")
            scores2 = regular2.split(",")
            if len(scores1) < MIN_REGULAR_SCORES or len(scores2) < MIN_REGULAR_SCORES:
                return None
            scored.append(
                (
                    sum(map(tenths, scores1)),
                    len(scores1),
                    tenths(mid1),
                    tenths(end1),
                    sum(map(tenths, scores2)),
                    len(scores2),
                    tenths(mid2),
                    tenths(end2),
                )
            )
            layout.append(code)
    except KeyError:  # a number that is not the text of a valid score
        return None
    if len(set(codes)) != len(codes):
        return None
    student = (student_id, layout, scored, comments1, comments2, _RATINGS[conduct_year], absences)
    return student, match.end()


def _secondary_student(raw: object) -> tuple[str, SecondaryStudent]:
    """A TT22/TT43 student from its JSON, or _Invalid saying what is wrong and where.

    The careful reader: nearly every student of a batch is well formed and is read by
    _plain_secondary_in_tenths instead, which accepts only what this one would; anything unusual,
    valid or not, comes here, and this is the one that says what is wrong.
    """
    raw = _object(raw)
    student_id = _student_id(raw)
    student = SecondaryStudent(
        subjects=_subjects(raw, _secondary_subject),
        conduct=_read(raw, "conduct", _conduct),
        absences=_read(raw, "absences", _absences),
    )
    _only(raw, _SECONDARY_STUDENT_FIELDS, 4)
    return student_id, student


def _secondary_subject(raw: dict) -> ScoredSubject | CommentSubject:
    code = _read(raw, "code", _text)
    scored = _read(raw, "scored", _flag)
    _only(raw, _SCORED_FIELDS, 4)
    if scored:
        return ScoredSubject(code, _read(raw, "term1", _term_scores), _read(raw, "term2", _term_scores))
    return CommentSubject(code, _read(raw, "term1", _comment_grade), _read(raw, "term2", _comment_grade))


def _flag(value: object) -> bool:
    if type(value) is not bool:
        raise _Invalid(_("must be true or false"))
    return value


def _term_scores(value: object) -> TermScores:
    term = _object(value)
    regular = _read(term, "regular", _regular_scores)
    scores = TermScores(regular, _read(term, "mid", _score), _read(term, "end", _score))
    _only(term, _TERM_FIELDS, 3)
    return scores


def _regular_scores(value: object) -> tuple[Decimal, ...]:
    scores = _list(value)
    if len(scores) < MIN_REGULAR_SCORES:
        raise _Invalid(
            _("at least %(min)d regular scores are needed, %(count)d given")
            % {"min": MIN_REGULAR_SCORES, "count": len(scores)}
        )
    result = []
    for index, score in enumerate(scores):
        try:
            result.append(_score(score))
        except _Invalid as exc:
            raise exc.under(index) from None
    return tuple(result)


def _comment_grade(value: object) -> CommentGrade:
    return _choice(value, _COMMENT_GRADES)


def _conduct(value: object) -> Ratings:
    conduct = _object(value)
    ratings = Ratings(
        _read(conduct, "term1", _rating), _read(conduct, "term2", _rating), _read(conduct, "year", _rating)
    )
    _only(conduct, _CONDUCT_FIELDS, 3)
    return ratings


def _rating(value: object) -> Rating:
    return _choice(value, _RATINGS)


def _absences(value: object) -> int:
    return _whole(value, low=0, high=MAX_ABSENCE_SESSIONS)


# TT27

_PRIMARY_PUPIL_FIELDS = frozenset({"id", "subjects", "qualities", "competencies"})
_PRIMARY_SUBJECT_FIELDS = frozenset({"code", "level", "test_score"})


def _primary_pupil(raw: object) -> tuple[str, PrimaryPupil]:
    raw = _object(raw)
    pupil_id = _student_id(raw)
    pupil = PrimaryPupil(
        subjects=_subjects(raw, _primary_subject),
        qualities=_read(raw, "qualities", _marks),
        competencies=_read(raw, "competencies", _marks),
    )
    _only(raw, _PRIMARY_PUPIL_FIELDS, 4)
    return pupil_id, pupil


def _primary_subject(raw: dict) -> PrimarySubject:
    code = _read(raw, "code", _text)
    level = _read(raw, "level", _subject_level)
    test_score = None
    if "test_score" in raw:
        test_score = _read(raw, "test_score", _test_score)
    _only(raw, _PRIMARY_SUBJECT_FIELDS, 2 + ("test_score" in raw))
    return PrimarySubject(code, level, test_score)


def _subject_level(value: object) -> SubjectLevel:
    return _choice(value, _SUBJECT_LEVELS)


def _test_score(value: object) -> int:
    return _whole(value, low=TEST_SCORE_MIN, high=TEST_SCORE_MAX)


def _marks(value: object) -> dict[str, QualityLevel]:
    marks = _object(value)
    if not marks:
        raise _Invalid(_("must not be empty"))
    result = {}
    for code, level in marks.items():
        try:
            result[_text(code)] = _choice(level, _QUALITY_LEVELS)
        except _Invalid as exc:
            raise exc.under(code) from None
    return result
