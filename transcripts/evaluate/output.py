"""The output: each student's result as compact JSON text, and the whole batch written as UTF-8."""

from __future__ import annotations

import json

from django.core.management.base import OutputWrapper

from transcripts.rules.tt22 import SecondaryResult
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


def output_write(stdout: OutputWrapper, chunks: list[bytes]) -> None:
    """Write the output, {"students": [...]}, from the chunks evaluate_input gave."""
    # The contract says UTF-8, whatever the locale of the terminal says: bytes go to the binary
    # buffer when there is one.
    buffer = getattr(stdout, "buffer", None)
    if buffer is None:  # a text stream, such as call_command(stdout=StringIO()) gives

        def write(chunk: bytes) -> None:
            stdout.write(chunk.decode(), ending="")

    else:
        write = buffer.write
    stdout.flush()
    write(b'{"students":[')
    for index, chunk in enumerate(chunks):
        write(b"," + chunk if index else chunk)
    write(b"]}\n")
    if buffer is not None:
        buffer.flush()
