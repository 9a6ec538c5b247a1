"""`manage.py evaluate < input.json > output.json`: apply a rule set to a batch of students.

Input: {"ruleset": "tt22" | "tt43" | "tt27", "students": [...]}.
- TT22/TT43 student: {"id": str, "subjects": [{"code": str, "scored": true, "term1": {"regular":
  [num, ...], "mid": num, "end": num}, "term2": {...}} | {"code": str, "scored": false, "term1":
  "Đ"|"CĐ", "term2": "Đ"|"CĐ"}], "conduct": {"term1": L, "term2": L, "year": L}, "absences": int},
  L one of "T", "K", "Đ", "CĐ".
- TT27 pupil: {"id": str, "subjects": [{"code": str, "level": "T"|"H"|"C", "test_score": int
  (optional)}], "qualities": {code: "T"|"Đ"|"C"}, "competencies": {code: "T"|"Đ"|"C"}}.

Output, compact UTF-8 JSON, students in input order: {"students": [...]} with
- TT22/TT43: {"id", "subjects": {code: {"term1", "term2", "year"}}, "learning": {"term1", "term2",
  "year"}, "title": "xuat_sac" | "gioi" | null, "outcome": "promoted" | "summer_training" |
  "reassessment" | "repeat"}; averages are numbers with one decimal (7.7, 8.0), comment subjects
  "Đ"/"CĐ";
- TT27: {"id", "result": "HTXS" | "HTT" | "HT" | "CHT"}.

Input that breaks the contract (invalid JSON, an unknown rule set, a score of 11 or 7.25, a missing
term, a negative absence count, an unknown level, a field that is not in the contract) is refused:
the command exits non-zero, writes nothing on stdout, and names on stderr every faulty student (the
first MAX_REPORTED of them) by position and id, with the field as a JSON path:
`students[3] (id "HS0042"): subjects[1].term2.mid: 11 is above 10`. The path stays as in the JSON;
the problem is translated (Vietnamese by default).

The database is never opened (no system checks, no models), so it runs anywhere the code is.
Scores are read as Decimals straight from the JSON text, never through binary floats.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from transcripts.rules import RuleSet, RuleSetError, ruleset_for
from transcripts.rules.common import CommentGrade, Rating
from transcripts.rules.tt22 import (
    MIN_REGULAR_SCORES,
    SCORE_MAX,
    SCORE_MIN,
    CommentSubject,
    Ratings,
    ScoredSubject,
    SecondaryResult,
    SecondaryStudent,
    TermScores,
)
from transcripts.rules.tt27 import (
    TEST_SCORE_MAX,
    TEST_SCORE_MIN,
    PrimaryPupil,
    PrimaryResult,
    PrimarySubject,
    QualityLevel,
    SubjectLevel,
)

# Faulty students named on stderr; the rest are counted.
MAX_REPORTED = 20
# More absent sessions than there can be (two a day, every day of a year) is a typing error, such
# as 4500 for 45.0, not a student to hold back.
MAX_ABSENCE_SESSIONS = 2 * 366

# Every valid secondary score (0.0, 0.1, ... 10.0), keyed by value: an int 7, a Decimal 7.5 or 7.50
# all find their canonical Decimal with one lookup (equal numbers hash equal).
_VALID_SCORES = [Decimal(tenths).scaleb(-1) for tenths in range(101)]
_SCORES: dict[object, Decimal] = dict(zip(_VALID_SCORES, _VALID_SCORES, strict=True))
_RATINGS = {rating.value: rating for rating in Rating}
_COMMENT_GRADES = {grade.value: grade for grade in CommentGrade}
_SUBJECT_LEVELS = {level.value: level for level in SubjectLevel}
_QUALITY_LEVELS = {level.value: level for level in QualityLevel}
_BATCH_FIELDS = frozenset({"ruleset", "students"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class Command(BaseCommand):
    help = "Apply a rule set (tt22, tt43, tt27) to the students read as JSON on stdin; results on stdout."

    # Runs without a database server: no system checks (they would inspect models and the DB).
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
        try:
            payload = json.loads(stdin.read(), parse_float=Decimal, parse_constant=_reject_constant)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
            raise CommandError(_("The input is not valid JSON: %(error)s") % {"error": exc}) from exc
        ruleset, students = _batch(payload)
        parts = _evaluate_all(ruleset, students)
        text = '{"students":[' + ",".join(parts) + "]}\n"
        # The contract says UTF-8, whatever the locale of the terminal says.
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            self.stdout.flush()
            buffer.write(text.encode())
            buffer.flush()
        else:
            self.stdout.write(text, ending="")


def _batch(payload: object) -> tuple[RuleSet, list]:
    if type(payload) is not dict:
        raise CommandError(_('The input must be a JSON object with the fields "ruleset" and "students".'))
    problems = []
    try:
        ruleset = _read(payload, "ruleset", _ruleset)
    except _Invalid as exc:
        problems.append(exc.describe())
    try:
        students = _read(payload, "students", _list)
    except _Invalid as exc:
        problems.append(exc.describe())
    try:
        _only(payload, _BATCH_FIELDS, 2)
    except _Invalid as exc:
        problems.append(exc.describe())
    if problems:
        raise CommandError("\n".join(problems))
    return ruleset, students


def _ruleset(value: object) -> RuleSet:
    try:
        return ruleset_for(value)
    except RuleSetError:
        raise _Invalid(
            _("%(value)s is not one of %(choices)s")
            % {"value": _show(value), "choices": ", ".join(_show(code) for code in ("tt22", "tt43", "tt27"))}
        ) from None


def _evaluate_all(ruleset: RuleSet, students: list) -> list[str]:
    """Each student's output as compact JSON, in input order; every faulty student is reported.

    After the first fault the rest are only checked, not evaluated, since nothing will be written.
    Each input student is dropped once read, so the parsed input shrinks as the output grows.
    """
    secondary = ruleset.kind == "secondary"
    read = _secondary_student if secondary else _primary_pupil
    render = _render_secondary if secondary else _render_primary
    evaluate = ruleset.evaluate
    encode = _ENCODER.encode
    parts: list[str] = []
    problems: list[str] = []
    faulty = 0
    for index, raw in enumerate(students):
        students[index] = None
        try:
            student_id, student = read(raw)
        except _Invalid as exc:
            faulty += 1
            if faulty <= MAX_REPORTED:
                problems.append(exc.describe_student(index, raw))
            continue
        if not faulty:
            parts.append(encode(render(student_id, evaluate(student))))
    if faulty:
        if faulty > MAX_REPORTED:
            rest = faulty - MAX_REPORTED
            problems.append(
                ngettext(
                    "... and %(count)d more student with errors.",
                    "... and %(count)d more students with errors.",
                    rest,
                )
                % {"count": rest}
            )
        raise CommandError("\n".join(problems))
    return parts


# --- Output ----------------------------------------------------------------------------------


def _render_secondary(student_id: str, result: SecondaryResult) -> dict:
    subjects = {}
    for subject in result.subjects:
        if subject.scored:
            # float() of a one-decimal Decimal prints back as that decimal: 7.7, 8.0, 10.0.
            subjects[subject.code] = {
                "term1": float(subject.term1),
                "term2": float(subject.term2),
                "year": float(subject.year),
            }
        else:
            subjects[subject.code] = {"term1": subject.term1, "term2": subject.term2, "year": subject.year}
    learning = result.learning
    return {
        "id": student_id,
        "subjects": subjects,
        "learning": {"term1": learning.term1, "term2": learning.term2, "year": learning.year},
        "title": result.title,
        "outcome": result.outcome,
    }


def _render_primary(student_id: str, result: PrimaryResult) -> dict:
    return {"id": student_id, "result": result.result}


# --- Input -----------------------------------------------------------------------------------


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
        # The location is JSON, not prose: it stays untranslated, like the field names in it.
        student_id = raw.get("id") if type(raw) is dict else None
        who = f"students[{index}]"
        if type(student_id) is str and student_id:
            who += f" (id {_show(student_id)})"
        return f"{who}: {self.describe()}"


def _show(value: object) -> str:
    """A value as it looks in JSON, shortened."""
    text = str(value) if isinstance(value, Decimal) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


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


def _choice(value: object, choices: dict):
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
    number = Decimal(str(value)) if type(value) is float else Decimal(value)
    found = _SCORES.get(number)  # a float such as 0.1, which equals no Decimal until read as text
    if found is not None:
        return found
    if number < SCORE_MIN:
        raise _Invalid(_("%(value)s is below %(min)s") % {"value": _show(value), "min": SCORE_MIN})
    if number > SCORE_MAX:
        raise _Invalid(_("%(value)s is above %(max)s") % {"value": _show(value), "max": SCORE_MAX})
    raise _Invalid(_("%(value)s has more than one decimal") % {"value": _show(value)})


def _student_id(raw: object) -> str:
    return _read(_object(raw), "id", _text)


def _subjects(raw: dict, read_subject) -> tuple:
    """The subjects, each read by read_subject; codes must be unique (they key the output)."""
    subjects = _read(raw, "subjects", _non_empty_list)
    seen: dict[str, int] = {}
    result = []
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


def _read(raw: dict, key: str, read):
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


def _secondary_student(raw: object) -> tuple[str, SecondaryStudent]:
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
