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
term, a negative absence count, an unknown level, a field that is not in the contract, a subject
code given twice, an empty list of subjects) is refused: the command exits non-zero, writes
nothing on stdout, and names on stderr every faulty student (the first MAX_REPORTED of them) by
position and id, with the field as a JSON path:
`students[3] (id "HS0042"): subjects[1].term2.mid: 11 is above 10`. The location stays as in the
JSON; the problem after it is translated (Vietnamese by default).

The database is never opened (no system checks, no models), so it runs anywhere the code is.

Memory and time, for a province's 200,000 students: the input is read at once, but parsed one
student at a time from a window of decoded text (_JsonStream), so it is never all in memory as
Python objects; each student's output is kept as compact JSON text until the whole batch has
passed. Scores are read as Decimals straight from the JSON text, never through binary floats.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Iterator
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

# Every valid secondary score, 0.0, 0.1, ... 10.0, as one shared Decimal each.
_VALID_SCORES = [Decimal(tenths).scaleb(-1) for tenths in range(101)]
# Keyed by value: an int 7, a Decimal 7.5 or 7.50 all find their shared Decimal (equal numbers
# hash equal; True equals 1 too, so the careful reader rules booleans out first).
_SCORES: dict[object, Decimal] = dict(zip(_VALID_SCORES, _VALID_SCORES, strict=True))
# Keyed by identity, for the fast reader: a JSON number that is a valid score is parsed either to
# one of the shared Decimals (_Literals below) or to an int from 0 to 10, which CPython also
# shares. So one dict lookup on id() recognises a valid score, without hashing a Decimal, and
# nothing else can pass (not True, not 11, not 7.25); whatever fails goes to the careful reader.
_SCORE_BY_ID: dict[int, Decimal] = {id(score): score for score in _VALID_SCORES} | {
    id(number): _SCORES[number] for number in range(11)
}
_score_by_id = _SCORE_BY_ID.__getitem__
_RATINGS = {rating.value: rating for rating in Rating}
_COMMENT_GRADES = {grade.value: grade for grade in CommentGrade}
_SUBJECT_LEVELS = {level.value: level for level in SubjectLevel}
_QUALITY_LEVELS = {level.value: level for level in QualityLevel}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A str as a JSON string literal, non-ASCII kept as it is (ensure_ascii=False).
_json_string = json.encoder.encode_basestring
# Output is joined and encoded this many students at a time.
_OUTPUT_BATCH = 2000


class Command(BaseCommand):
    help = "Apply a rule set (tt22, tt43, tt27) to the students read as JSON on stdin; results on stdout."

    # Runs without a database server: no system checks (they would inspect models and the DB).
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        stdin = getattr(sys.stdin, "buffer", None)
        data = stdin.read() if stdin is not None else sys.stdin.read().encode()
        chunks = _evaluate_input(data)
        del data
        # Only now, when every student has passed, is anything written. The contract says UTF-8,
        # whatever the locale of the terminal says: bytes go to the binary buffer when there is one.
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is None:  # a text stream, such as call_command(stdout=StringIO()) gives

            def write(chunk: bytes) -> None:
                self.stdout.write(chunk.decode(), ending="")

        else:
            write = buffer.write
        self.stdout.flush()
        write(b'{"students":[')
        for index, chunk in enumerate(chunks):
            write(b"," + chunk if index else chunk)
        write(b"]}\n")
        if buffer is not None:
            buffer.flush()


# --- The batch -------------------------------------------------------------------------------


def _evaluate_input(data: bytes) -> list[bytes]:
    """The output of every student, as chunks of UTF-8 JSON; CommandError for any fault.

    The students are evaluated as they are read, so the rule set must be known by then: when
    "students" comes before "ruleset" in the object, the students are first only read through (for
    their syntax) and the input is read a second time.
    """
    ruleset, chunks = _evaluate_pass(data, None)
    if chunks is None:
        _, chunks = _evaluate_pass(data, ruleset)
    return chunks


def _evaluate_pass(data: bytes, known: RuleSet | None) -> tuple[RuleSet, list[bytes] | None]:
    stream = _JsonStream(data)
    if stream.peek() != "{":
        stream.value()  # a syntax error is the more useful message
        raise CommandError(_('The input must be a JSON object with the fields "ruleset" and "students".'))
    ruleset = known
    chunks = None
    problems: list[str] = []
    seen = set()
    for key in stream.members():
        seen.add(key)
        if key == "ruleset":
            value = stream.value()
            if known is None:
                try:
                    ruleset = _ruleset(value)
                except _Invalid as exc:
                    problems.append(exc.under("ruleset").describe())
        elif key == "students":
            if stream.peek() != "[":
                stream.value()
                problems.append(_Invalid(_("must be a list"), "students").describe())
            elif ruleset is None or problems:
                for _student in stream.items():
                    pass  # read through: evaluated on the second pass, or not at all
            else:
                chunks = _evaluate_students(ruleset, stream)
        else:
            stream.value()
            problems.append(_Invalid(_("unexpected field"), key).describe())
    stream.end()
    for key in ("ruleset", "students"):
        if key not in seen:
            problems.append(_Invalid(_("is missing"), key).describe())
    if problems:
        raise CommandError("\n".join(problems))
    return ruleset, chunks


def _ruleset(value: object) -> RuleSet:
    try:
        return ruleset_for(value)
    except RuleSetError:
        raise _Invalid(
            _("%(value)s is not one of %(choices)s")
            % {"value": _show(value), "choices": ", ".join(_show(code) for code in ("tt22", "tt43", "tt27"))}
        ) from None


def _evaluate_students(ruleset: RuleSet, stream: _JsonStream) -> list[bytes]:
    """Read, check and evaluate the students one by one; every faulty student is reported.

    After the first fault the rest are only checked, not evaluated, since nothing will be written.
    """
    if ruleset.kind == "secondary":
        read, render = _secondary_student, _render_secondary
    else:
        read, render = _primary_pupil, _render_primary
    evaluate = ruleset.evaluate
    chunks: list[bytes] = []
    batch: list[str] = []
    problems: list[str] = []
    faulty = 0
    index = 0
    try:
        for raw in stream.items():
            try:
                student_id, student = read(raw)
            except _Invalid as exc:
                faulty += 1
                if faulty <= MAX_REPORTED:
                    problems.append(exc.describe_student(index, raw))
            else:
                if not faulty:
                    batch.append(render(student_id, evaluate(student)))
                    if len(batch) == _OUTPUT_BATCH:
                        chunks.append(",".join(batch).encode())
                        batch.clear()
            index += 1
    except CommandError as exc:  # not JSON: said after the faults found before it
        problems.append(f"students[{index}]: {exc}")
        raise CommandError("\n".join(problems)) from None
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
    if batch:
        chunks.append(",".join(batch).encode())
    return chunks


# --- Reading JSON a value at a time ----------------------------------------------------------


class _Literals(dict):
    """JSON number text -> Decimal, for json's parse_float: valid scores come back as the shared
    Decimals (so _SCORE_BY_ID knows them), anything else as a new Decimal. Never a binary float."""

    def __missing__(self, text: str) -> Decimal:
        number = Decimal(text)
        try:
            return _SCORES.get(number, number)
        except TypeError:  # a signalling NaN cannot be hashed; JSON has none, but be safe
            return number


_LITERALS = _Literals({f"{tenths // 10}.{tenths % 10}": score for tenths, score in enumerate(_VALID_SCORES)})
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


class _JsonStream:
    """One JSON document in UTF-8 bytes, read a value at a time from a window of decoded text.

    json.loads on a province's batch would hold every student as Python objects at once (several
    GB for 200,000 students); here only the current window (about _CHUNK characters) and the value
    being read are. Members of the top object and items of an array are walked by hand; every
    value inside them is parsed by json's C scanner. Syntax errors raise CommandError with the
    line and column in the whole input.
    """

    _CHUNK = 1 << 20
    # A single value (one student) larger than this is refused rather than read without end.
    _MAX_WINDOW = 64 << 20

    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._next = 3 if data[:3] == codecs.BOM_UTF8 else 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._eof = False
        self._text = ""
        self._pos = 0
        # Where self._text starts in the whole input, for error messages.
        self._offset = 0
        self._line = 1
        self._column = 1
        self._scan = json.JSONDecoder(
            parse_float=_LITERALS.__getitem__, parse_constant=_reject_constant
        ).raw_decode

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end)."""
        while True:
            self._pos = _WHITESPACE.match(self._text, self._pos).end()
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._more():
                return ""

    def value(self) -> object:
        """The next complete JSON value."""
        self.peek()
        while True:
            try:
                value, end = self._scan(self._text, self._pos)
            except json.JSONDecodeError as exc:
                # Most often the value runs past the window: read on and try again.
                if len(self._text) - self._pos < self._MAX_WINDOW and self._more():
                    continue
                raise self._error(exc.msg, exc.pos) from None
            except ValueError as exc:  # NaN, Infinity
                raise self._error(str(exc), self._pos) from None
            # A number at the very end of the window may go on in the next chunk.
            if end == len(self._text) and self._more():
                continue
            self._pos = end
            return value

    def members(self) -> Iterator[str]:
        """The keys of an object, one at a time; the caller reads each value."""
        self._expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self._error("Expecting property name enclosed in double quotes", self._pos)
            key = self.value()
            self._expect(":")
            yield key
            if self._separator("}"):
                return

    def items(self) -> Iterator[object]:
        """The items of an array, one at a time."""
        self._expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            if self._separator("]"):
                return

    def end(self) -> None:
        if self.peek():
            raise self._error("Extra data", self._pos)

    def _separator(self, closing: str) -> bool:
        """After a member or item: True at the closing bracket, False after a comma."""
        found = self.peek()
        if found not in (",", closing):
            raise self._error(f"Expecting ',' or '{closing}' delimiter", self._pos)
        self._pos += 1
        return found == closing

    def _expect(self, char: str) -> None:
        if self.peek() != char:
            raise self._error(f"Expecting '{char}'", self._pos)
        self._pos += 1

    def _more(self) -> bool:
        """Decode the next chunk onto the window, dropping what was read; False at the end."""
        if self._eof:
            return False
        read = self._text[: self._pos]
        if read:
            newlines = read.count("\n")
            if newlines:
                self._line += newlines
                self._column = len(read) - read.rfind("\n")
            else:
                self._column += len(read)
            self._offset += len(read)
            self._text = self._text[self._pos :]
            self._pos = 0
        chunk = self._data[self._next : self._next + self._CHUNK]
        self._next += len(chunk)
        self._eof = self._next >= len(self._data)
        try:
            self._text += self._decoder.decode(chunk, self._eof)
        except UnicodeDecodeError as exc:
            self._eof = True
            raise self._error(f"not UTF-8 text ({exc.reason})", len(self._text)) from None
        return True

    def _error(self, message: str, pos: int) -> CommandError:
        before = self._text[:pos]
        newlines = before.count("\n")
        if newlines:
            line, column = self._line + newlines, pos - before.rfind("\n")
        else:
            line, column = self._line, self._column + pos
        where = f"{message}: line {line} column {column} (char {self._offset + pos})"
        return CommandError(_("The input is not valid JSON: %(error)s") % {"error": where})


# --- Output ----------------------------------------------------------------------------------


# Written by hand rather than through json: a third of the command's time went to building dicts
# and converting averages to floats. What goes in is safe: averages are Decimals quantized to one
# decimal in 0-10, whose str() is plain JSON ("7.7", "10.0"); levels, titles and outcomes are the
# rules' enum values; the id and the codes go through json's own string encoder.
_SCORED_ROW = '%s:{"term1":%s,"term2":%s,"year":%s}'
_COMMENT_ROW = '%s:{"term1":"%s","term2":"%s","year":"%s"}'
_SECONDARY = (
    '{"id":%s,"subjects":{%s},"learning":{"term1":"%s","term2":"%s","year":"%s"},"title":%s,"outcome":"%s"}'
)
_PRIMARY = '{"id":%s,"result":"%s"}'
_CODES: dict[str, str] = {}


def _render_secondary(student_id: str, result: SecondaryResult) -> str:
    rows = [
        (_SCORED_ROW if subject.scored else _COMMENT_ROW)
        % (_code(subject.code), subject.term1, subject.term2, subject.year)
        for subject in result.subjects
    ]
    learning = result.learning
    title = "null" if result.title is None else f'"{result.title}"'
    return _SECONDARY % (
        _json_string(student_id),
        ",".join(rows),
        learning.term1,
        learning.term2,
        learning.year,
        title,
        result.outcome,
    )


def _render_primary(student_id: str, result: PrimaryResult) -> str:
    return _PRIMARY % (_json_string(student_id), result.result)


def _code(code: str) -> str:
    """A subject code as a JSON string; the few codes of a batch are encoded once."""
    found = _CODES.get(code)
    if found is None:
        found = _json_string(code)
        if len(_CODES) < 10_000:
            _CODES[code] = found
    return found


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


class _NotPlain(Exception):
    """The fast reader met something it does not vouch for: the careful reader takes over."""


def _secondary_student(raw: object) -> tuple[str, SecondaryStudent]:
    """A TT22/TT43 student from its JSON, or _Invalid saying what is wrong and where.

    Nearly every student of a batch is well formed: _plain_secondary_student reads those with as few
    operations as it can and accepts only what the careful reader (_checked_secondary_student)
    would accept; anything unusual, valid or not, is left to the careful reader, which is the one
    that says what is wrong.
    """
    try:
        return _plain_secondary_student(raw)
    except (_NotPlain, KeyError, TypeError):
        return _checked_secondary_student(raw)


def _plain_secondary_student(raw: object) -> tuple[str, SecondaryStudent]:
    if raw.__class__ is not dict or len(raw) != len(_SECONDARY_STUDENT_FIELDS):
        raise _NotPlain
    student_id = raw["id"]
    absences = raw["absences"]
    conduct = raw["conduct"]
    subjects = raw["subjects"]
    if (
        student_id.__class__ is not str
        or not student_id
        or absences.__class__ is not int
        or not 0 <= absences <= MAX_ABSENCE_SESSIONS
        or conduct.__class__ is not dict
        or len(conduct) != len(_CONDUCT_FIELDS)
        or subjects.__class__ is not list
        or not subjects
    ):
        raise _NotPlain
    ratings = Ratings(_RATINGS[conduct["term1"]], _RATINGS[conduct["term2"]], _RATINGS[conduct["year"]])
    read = []
    codes = set()
    for subject in subjects:
        if subject.__class__ is not dict or len(subject) != len(_SCORED_FIELDS):
            raise _NotPlain
        code = subject["code"]
        scored = subject["scored"]
        if code.__class__ is not str or not code or code in codes:
            raise _NotPlain
        codes.add(code)
        if scored is True:
            read.append(ScoredSubject(code, _plain_term(subject["term1"]), _plain_term(subject["term2"])))
        elif scored is False:
            grades = _COMMENT_GRADES
            read.append(CommentSubject(code, grades[subject["term1"]], grades[subject["term2"]]))
        else:
            raise _NotPlain
    return student_id, SecondaryStudent(tuple(read), ratings, absences)


def _plain_term(term: object) -> TermScores:
    if term.__class__ is not dict or len(term) != len(_TERM_FIELDS):
        raise _NotPlain
    regular = term["regular"]
    if regular.__class__ is not list or len(regular) < MIN_REGULAR_SCORES:
        raise _NotPlain
    # KeyError for anything that is not a valid score.
    scores = tuple(map(_score_by_id, map(id, regular)))
    return TermScores(scores, _score_by_id(id(term["mid"])), _score_by_id(id(term["end"])))


def _checked_secondary_student(raw: object) -> tuple[str, SecondaryStudent]:
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
