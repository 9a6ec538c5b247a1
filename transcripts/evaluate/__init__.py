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

Memory and time, for a province's 200,000 students (bench/evaluate.py): the input is read from
stdin a chunk at a time and parsed one student at a time from a window of decoded text
(_JsonStream), so memory does not grow with the batch; each student's output is written as it is
made, to a temporary file (in memory while small), copied to stdout once the whole batch has
passed. Scores are read as Decimals straight from the JSON text, never through binary floats, and
a well-formed student goes straight into the rules' integer tenths (one written compactly, as
machines write batches, is read from its text by one regular expression, without the JSON
parser). A large batch is cut into pieces that worker processes evaluate at once (`--jobs`,
parallel), in order, with the same bytes out.

The package, by sub-domain:
- batch: the top-level object, the students read, checked and evaluated one by one, the refusal;
- evaluator: one student's JSON read, checked, evaluated and rendered (the stream's and workers');
- parallel: a large batch cut into pieces evaluated by worker processes, in order;
- jsonstream: reading the JSON input a value at a time (_JsonStream) from its source (_Source);
- scores: the shared Decimals of the valid scores, and the JSON number parser that yields them;
- students: a student's JSON checked against the contract (_Invalid says where), with a fast path;
- output: each student's result as compact JSON text, and the whole output written.
"""

from typing import IO

from .batch import evaluate_input
from .evaluator import MAX_REPORTED
from .jsonstream import _Source
from .output import output_write


def input_source(stdin: IO) -> _Source:
    """The command's input: stdin's bytes, read a chunk at a time (text only if it has no bytes)."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:
        return _Source(data=stdin.read().encode())
    return _Source(buffer)


__all__ = ["MAX_REPORTED", "evaluate_input", "input_source", "output_write"]
