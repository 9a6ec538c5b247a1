"""The output: each student's result as compact JSON text, and the whole batch written as UTF-8."""

from __future__ import annotations

import codecs
import json
from typing import IO

from django.core.management.base import OutputWrapper

from transcripts.rules.tt22 import SecondaryResult, YearInTenths
from transcripts.rules.tt27 import PrimaryResult

# A str as a JSON string literal, non-ASCII kept as it is (ensure_ascii=False).
_json_string = json.encoder.encode_basestring


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


# An average in tenths as JSON: 77 -> "7.7", 100 -> "10.0" (what str() gives of its Decimal).
_TENTHS_TEXT = [f"{tenths // 10}.{tenths % 10}" for tenths in range(101)]
# The subjects' rows as rendered, by (code, term I, term II) in tenths or grades; bounded.
_ROWS: dict[tuple, str] = {}
_ROWS_MAX = 1 << 16


def _render_in_tenths(student_id: str, layout: list, year: YearInTenths) -> str:
    """_render_secondary's text, from _plain_secondary_in_tenths's layout and the rules' answer
    in tenths (the same bytes: tests/transcripts/test_evaluate_stream.py compares them)."""
    averages = iter(year.averages)
    rows = []
    cache = _ROWS
    text = _TENTHS_TEXT
    for subject in layout:
        if type(subject) is str:  # a scored subject's code
            average1, average2, average_year = next(averages)
            key: tuple = (subject, average1, average2)  # the year follows from the terms
            row = cache.get(key)
            if row is None:
                row = _SCORED_ROW % (_code(subject), text[average1], text[average2], text[average_year])
                if len(cache) < _ROWS_MAX:
                    cache[key] = row
        else:  # (code, term I grade, term II grade) of a comment subject
            key = subject
            row = cache.get(key)
            if row is None:
                code, grade1, grade2 = subject
                row = _COMMENT_ROW % (_code(code), grade1, grade2, grade2)
                if len(cache) < _ROWS_MAX:
                    cache[key] = row
        rows.append(row)
    learning1, learning2, learning_year = year.learning
    title = "null" if year.title is None else f'"{year.title}"'
    return _SECONDARY % (
        _json_string(student_id),
        ",".join(rows),
        learning1,
        learning2,
        learning_year,
        title,
        year.outcome,
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


def output_write(stdout: OutputWrapper, output: IO[bytes]) -> None:
    """Write the output, as evaluate_input left it in `output` (a file), to stdout."""
    # The contract says UTF-8, whatever the locale of the terminal says: bytes go to the binary
    # buffer when there is one.
    buffer = getattr(stdout, "buffer", None)
    output.seek(0)
    stdout.flush()
    if buffer is None:  # a text stream, such as call_command(stdout=StringIO()) gives
        decoder = codecs.getincrementaldecoder("utf-8")()
        while chunk := output.read(_COPY):
            stdout.write(decoder.decode(chunk), ending="")
        stdout.write(decoder.decode(b"", True), ending="")
        return
    while chunk := output.read(_COPY):
        buffer.write(chunk)
    buffer.flush()


_COPY = 1 << 20
