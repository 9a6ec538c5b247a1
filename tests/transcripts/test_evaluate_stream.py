"""`manage.py evaluate` on a province's batch: the fast reader, the rules in tenths and the
worker processes give the very bytes (and refusals) the careful path gives.

- The fast reader (_plain_secondary_in_tenths) vouches only for what the careful reader accepts:
  every field of a student is put through odd values, and whatever the fast reader takes, the
  careful reader takes too, with the same output.
- Random students: the command's output is, byte for byte, the careful reader's students through
  the Decimal rules as they were (test_rules_tenths.reference_evaluate).
- The compact reader (_compact_secondary, a student read from its text without the JSON parser)
  takes only texts that are JSON the fast reader reads to the same student: thousands of altered
  texts, and every doubtful way of writing a field.
- `--jobs 2` cuts a batch into pieces for worker processes (small pieces here, so that a small
  batch makes many): the output, and every refusal with its positions, are those of `--jobs 1`;
  and once for real, in a subprocess, on a batch of several default pieces.
No database.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from tests.transcripts.test_rules_tenths import reference_evaluate
from transcripts.evaluate import parallel
from transcripts.evaluate.jsonstream import _JsonStream, _reject_constant
from transcripts.evaluate.output import _render_in_tenths, _render_secondary
from transcripts.evaluate.scores import _LITERALS
from transcripts.evaluate.students import (
    _compact_secondary,
    _Invalid,
    _NotPlain,
    _plain_secondary_in_tenths,
    _secondary_student,
)
from transcripts.rules import tt22

ROOT = Path(__file__).resolve().parents[2]
CODES = ["toan", "ngu_van", "ngoai_ngu_1", "lich_su", "dia_li", "vat_li", "hoa_hoc", "tin_hoc"]
COMMENTS = ["gdtc", "hdtn_hn", "gddp"]


def random_student(rng: random.Random, index: int) -> dict:
    """A TT22 student in the command's input shape, scores as JSON numbers (7.5, 8, 10.0)."""
    level = rng.choice([35, 50, 65, 80, 90, rng.randint(0, 100)])

    def score() -> float | int:
        tenths = min(100, max(0, level + rng.randint(-15, 15)))
        return tenths // 10 if tenths % 10 == 0 and rng.random() < 0.5 else tenths / 10

    subjects: list[dict] = []
    for code in CODES[: rng.randint(5, len(CODES))]:
        terms = {}
        for term in ("term1", "term2"):
            terms[term] = {
                "regular": [score() for _ in range(rng.choice((2, 3, 4)))],
                "mid": score(),
                "end": score(),
            }
        subjects.append({"code": code, "scored": True, **terms})
    for code in COMMENTS:
        grades = ["CĐ" if rng.random() < 0.1 else "Đ" for _ in "12"]
        subjects.append({"code": code, "scored": False, "term1": grades[0], "term2": grades[1]})
    rng.shuffle(subjects)
    ratings = ["T", "K", "Đ", "CĐ"]
    return {
        "id": f"HS{index:05d}",
        "subjects": subjects,
        "conduct": {"term1": rng.choice(ratings), "term2": rng.choice(ratings), "year": rng.choice(ratings)},
        "absences": rng.choice((0, 2, 45, 46)),
    }


def as_read(value: object) -> object:
    """A Python value as the command reads it: through JSON and the command's own decoder."""
    return _JsonStream.over_text(json.dumps(value, ensure_ascii=False)).value()


def fast(raw: object) -> str | None:
    """The fast path's output, or None where it leaves the student to the careful reader."""
    try:
        student_id, layout, scored, comments1, comments2, conduct, absences = _plain_secondary_in_tenths(raw)
    except (_NotPlain, KeyError, TypeError):
        return None
    year = tt22.evaluate_in_tenths(scored, comments1, comments2, conduct_year=conduct, absences=absences)
    return _render_in_tenths(student_id, layout, year)


def careful(raw: object) -> str | None:
    """The careful reader's student through the Decimal rules as they were; None if refused."""
    try:
        student_id, student = _secondary_student(raw)
    except _Invalid:
        return None
    return _render_secondary(student_id, reference_evaluate(student, tt22.MIN_SUBJECTS))


# --- The fast reader against the careful one ----------------------------------------------------

# JSON values, odd ones for a field that wants another: -0.0 and 10.0 are valid scores, 1e-07
# a number with too many decimals, 10**30 one too large for anything.
ODD_VALUES = [None, True, False, 0, 7, -1, 11, 7.25, 7.5, 10.0, -0.0, 1e-07, 10**30]
ODD_VALUES += ["7.5", "", "T", "Đ", "CĐ", [], [1, 2], {}]


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, as a path of keys and indexes."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def changed(student: dict, path: tuple, value: object, *, drop: bool = False) -> dict:
    result = copy.deepcopy(student)
    *parents, last = path
    target = result
    for part in parents:
        target = target[part]
    if drop:
        del target[last]
    else:
        target[last] = value
    return result


def test_the_fast_reader_takes_only_what_the_careful_reader_takes_with_the_same_output():
    student = random_student(random.Random(1), 1)
    variants = [student]
    for path in paths(student):
        variants += [changed(student, path, value) for value in ODD_VALUES]
        variants.append(changed(student, path, None, drop=True))
    for path in [(), *paths(student)]:
        target = student
        for part in path:
            target = target[part]
        if isinstance(target, dict):  # an object with a field too many
            variants.append(changed(student, (*path, "extra"), 1))
    taken = 0
    for variant in variants:
        raw = as_read(variant)
        output = fast(raw)
        if output is not None:
            taken += 1
            assert output == careful(raw), variant
    assert taken >= 50  # the odd but valid values (7, 7.5, 10.0, another grade) stay on the fast path
    assert taken < len(variants) / 2


def test_random_students_get_the_bytes_of_the_careful_reader_and_the_decimal_rules():
    rng = random.Random(2026)
    for index in range(1500):
        raw = as_read(random_student(rng, index))
        expected = careful(raw)
        assert expected is not None
        assert fast(raw) == expected


# --- The compact reader against the JSON parser ---------------------------------------------------


PARSE = json.JSONDecoder(parse_float=_LITERALS.__getitem__, parse_constant=_reject_constant).raw_decode


def compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_the_compact_reader_reads_what_the_parser_and_the_fast_reader_read():
    rng = random.Random(5)
    for index in range(1000):
        text = compact(random_student(rng, index))
        parsed = _JsonStream.over_text(text).value()
        assert _compact_secondary(text, 0) == (_plain_secondary_in_tenths(parsed), len(text))


def test_the_compact_reader_takes_no_altered_text_the_parser_would_read_otherwise():
    # Characters changed, dropped or doubled anywhere: whatever the compact reader still takes
    # is JSON, ending where it says, that the fast reader reads to the very same student.
    rng = random.Random(6)
    alphabet = '{}[],:"0123456789.eE-+ \\tfnrulsTKĐCx'
    texts = [compact(random_student(rng, index)) for index in range(20)]
    # Where it matters most: in and around numbers, strings and separators.
    places = [[at for at, char in enumerate(text) if char in '0123456789.,:"'] for text in texts]
    taken = 0
    for _ in range(20000):
        which = rng.randrange(len(texts))
        text = texts[which]
        at = rng.choice(places[which])
        edit = rng.choice(("change", "drop", "double"))
        if edit == "change":
            text = text[:at] + rng.choice(alphabet) + text[at + 1 :]
        elif edit == "drop":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + text[at] + text[at:]
        found = _compact_secondary(text + ",", 0)
        if found is None:
            continue
        taken += 1
        student, end = found
        parsed, parsed_end = PARSE(text)  # the command's decoder; raises if not JSON
        assert end == parsed_end, text
        assert _plain_secondary_in_tenths(parsed) == student, text
    assert taken > 200  # digits changed within a score, codes changed: still students


@pytest.mark.parametrize(
    ("written", "instead"),
    [
        ('"absences":0}', '"absences":00}'),
        ('"absences":0}', '"absences":01}'),
        ('"absences":0}', '"absences":-0}'),
        ('"absences":0}', '"absences":0.0}'),
        ('"mid":7.5', '"mid":07.5'),
        ('"mid":7.5', '"mid":7.50'),
        ('"mid":7.5', '"mid":7.'),
        ('"mid":7.5', '"mid":.5'),
        ('"mid":7.5', '"mid":7.5.5'),
        ('"mid":7.5', '"mid":75e-1'),
        ('"regular":[8,9]', '"regular":[8,,9]'),
        ('"regular":[8,9]', '"regular":[8,9,]'),
        ('"regular":[8,9]', '"regular":[8]'),
        ('"code":"toan"', '"code":"to\\u0061n"'),
        ('"code":"toan"', '"code":"to\\"an"'),
        ('"code":"toan"', '"code":"to\tan"'),
        ('"code":"toan"', '"code":""'),
        ('"code":"ly"', '"code":"toan"'),
        ('"year":"T"', '"year":"t"'),
        ('"scored":true', '"scored":True'),
    ],
)
def test_the_compact_reader_leaves_every_doubtful_text_to_the_parser(written, instead):
    student = {
        "id": "HS1",
        "subjects": [
            {
                "code": "toan",
                "scored": True,
                "term1": {"regular": [8, 9], "mid": 7.5, "end": 8},
                "term2": {"regular": [8, 9], "mid": 7.5, "end": 8},
            },
            {"code": "ly", "scored": False, "term1": "Đ", "term2": "CĐ"},
        ],
        "conduct": {"term1": "T", "term2": "T", "year": "T"},
        "absences": 0,
    }
    text = compact(student)
    assert written in text
    assert _compact_secondary(text, 0) is not None
    assert _compact_secondary(text.replace(written, instead, 1), 0) is None


# --- Worker processes ---------------------------------------------------------------------------


@pytest.fixture
def run(monkeypatch):
    """run(payload, jobs) -> (stdout, the refusal or None), in this process, in English; pieces
    of about 3 KB (a few students each), and the pieces the workers answered counted."""
    monkeypatch.setattr(parallel, "_BLOCK", 3000)
    taken = parallel._take

    def counting_take(*args):
        answered = taken(*args)
        run.pieces += answered
        return answered

    monkeypatch.setattr(parallel, "_take", counting_take)

    def evaluate(payload: bytes, jobs: int) -> tuple[str, str | None]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
        out = io.StringIO()
        with translation.override("en"):
            try:
                call_command("evaluate", "--jobs", str(jobs), stdout=out)
            except CommandError as exc:
                return out.getvalue(), str(exc)
        return out.getvalue(), None

    run.evaluate = evaluate
    run.pieces = 0
    return run


def batch(size: int, *, seed: int = 7, ruleset: str = "tt22") -> dict:
    rng = random.Random(seed)
    return {"ruleset": ruleset, "students": [random_student(rng, index) for index in range(size)]}


def in_both(run, payload: dict | bytes, **dumps) -> tuple[str, str | None]:
    """The command's answer with --jobs 2, checked to be --jobs 1's; the pieces were the workers'."""
    data = (
        payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False, **dumps).encode()
    )
    alone = run.evaluate(data, 1)
    assert run.pieces == 0
    together = run.evaluate(data, 2)
    assert together == alone
    return together


def test_workers_give_the_output_of_one_process(run):
    stdout, refusal = in_both(run, batch(400))
    assert refusal is None
    assert run.pieces > 20
    assert len(json.loads(stdout)["students"]) == 400


def test_workers_read_pretty_printed_input_with_a_byte_order_mark(run):
    text = json.dumps(batch(150), ensure_ascii=False, indent=2)
    _, refusal = in_both(run, b"\xef\xbb\xbf" + text.encode())
    assert refusal is None
    assert run.pieces > 10


def test_workers_name_every_faulty_student_where_it_is(run):
    payload = batch(400)
    for index in range(5, 400, 13):
        payload["students"][index]["absences"] = -1
    payload["students"][200]["subjects"][0]["term1"]["mid"] = 11  # its first fault, said first
    _, refusal = in_both(run, payload)
    lines = refusal.splitlines()
    assert lines[0] == 'students[5] (id "HS00005"): absences: -1 is below 0'
    assert lines[15] == 'students[200] (id "HS00200"): subjects[0].term1.mid: 11 is above 10'
    assert lines[19].startswith("students[252] ")
    assert lines[20] == "... and 11 more students with errors."
    assert run.pieces > 20


def test_workers_place_a_syntax_error_by_line_and_column(run):
    text = json.dumps(batch(300), ensure_ascii=False, indent=1)
    broken = text.replace('"id": "HS00250"', '"id": "HS00250" "x"')
    _, refusal = in_both(run, broken.encode())
    try:
        json.loads(broken)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno} (char {exc.pos})"
    assert refusal.startswith("students[250]: The input is not valid JSON: ")
    assert refusal.endswith(where)
    assert run.pieces > 10  # the pieces before it were the workers'


def test_workers_hand_back_a_piece_cut_where_no_student_ends(run):
    # A subject opening like a student (`,{"id":`) is a cut inside a student: the piece fails,
    # the stream reads on from there and names the fault.
    payload = batch(300)
    payload["students"][150]["subjects"].insert(2, {"id": "x", "code": "su", "scored": False})
    _, refusal = in_both(run, payload)
    assert refusal == 'students[150] (id "HS00150"): subjects[2].id: unexpected field'


def test_workers_read_the_rule_set_after_the_students(run):
    payload = batch(200, ruleset="tt43")
    stdout, refusal = in_both(run, {"students": payload["students"], "ruleset": "tt43"})
    assert refusal is None
    assert stdout == run.evaluate(json.dumps(payload, ensure_ascii=False).encode(), 2)[0]


def test_workers_evaluate_primary_pupils(run):
    levels = ["T", "H", "C"]
    rng = random.Random(3)
    pupils = [
        {
            "id": f"TH{index}",
            "subjects": [
                {"code": "toan", "level": rng.choice(levels), "test_score": rng.randint(4, 10)},
                {"code": "dao_duc", "level": rng.choice(levels)},
            ],
            "qualities": {"cham_chi": rng.choice(["T", "Đ"])},
            "competencies": {"tu_hoc": rng.choice(["T", "Đ", "C"])},
        }
        for index in range(300)
    ]
    _, refusal = in_both(run, {"ruleset": "tt27", "students": pupils})
    assert refusal is None
    assert run.pieces > 5


def test_the_command_in_a_process_of_its_own_gives_the_same_bytes_with_two_jobs():
    # About 1.3 MB per 1,000 students: several pieces of the default size, for real.
    data = json.dumps(batch(2500, seed=11), ensure_ascii=False).encode()
    assert len(data) > 3 * parallel._BLOCK
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings", "HOCBA_TESTING": "1"}
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/no-database"  # never opened
    runs = {
        jobs: subprocess.run(
            [sys.executable, "manage.py", "evaluate", "--jobs", str(jobs)],
            input=data,
            capture_output=True,
            cwd=ROOT,
            env=env,
            timeout=300,
            check=False,
        )
        for jobs in (1, 2)
    }
    assert runs[2].returncode == runs[1].returncode == 0, runs[2].stderr
    assert runs[2].stdout == runs[1].stdout
    assert len(json.loads(runs[2].stdout)["students"]) == 2500
