"""`manage.py evaluate`: the JSON contract end to end, and every refusal naming student and field.

The end-to-end cases run the real command in subprocesses, all started at once (each pays for
Django's start-up), with a DATABASE_URL that points nowhere: the command must never need it. The
finer cases call the command in-process. No test here uses the database.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation
from django.utils.translation import gettext

from transcripts.evaluate import jsonstream as command

ROOT = Path(__file__).resolve().parents[2]


# --- Inputs ----------------------------------------------------------------------------------


def scored(code: str, term1: tuple, term2: tuple) -> dict:
    """A scored subject; each term is (regular scores, mid, end)."""
    return {
        "code": code,
        "scored": True,
        "term1": {"regular": list(term1[0]), "mid": term1[1], "end": term1[2]},
        "term2": {"regular": list(term2[0]), "mid": term2[1], "end": term2[2]},
    }


def flat(code: str, one: float, two: float) -> dict:
    """A scored subject whose every score in term I is `one` and in term II `two`."""
    return scored(code, ([one, one], one, one), ([two, two], two, two))


def commented(code: str, one: str, two: str) -> dict:
    return {"code": code, "scored": False, "term1": one, "term2": two}


def conduct(one: str, two: str, year: str) -> dict:
    return {"term1": one, "term2": two, "year": year}


HS0001 = {
    "id": "HS0001",
    "subjects": [
        scored("toan", ([9, 9.5, 10, 9], 9, 9.5), ([9, 9, 10, 10], 10, 9)),  # 84/9 = 9.33; 85/9 = 9.44
        scored("ngu_van", ([7.2, 8, 8], 7, 8), ([8, 8, 8], 9, 8)),  # 61.2/8 = 7.65; 66/8 = 8.25
        # 7.65 again, where float arithmetic would give 7.6499999999999995
        scored("ngoai_ngu_1", ([7.5, 9.5, 7.7], 6.1, 8.1), ([9, 9, 9], 9, 9)),
        scored("lich_su", ([9, 9], 9, 9), ([9, 10], 9, 9)),  # 9.0; 64/7 = 9.14
        scored("khtn", ([10, 10], 9, 9.5), ([10, 9], 10, 10)),  # 66.5/7 = 9.5; 69/7 = 9.86
        scored("tin_hoc", ([8, 9], 8, 9), ([9, 9], 9, 9)),  # 60/7 = 8.57; 9.0
        commented("gdtc", "Đ", "Đ"),
        commented("hdtn", "Đ", "Đ"),
    ],
    "conduct": conduct("T", "T", "T"),
    "absences": 2,
}
HS0002 = {
    "id": "HS0002",
    "subjects": [
        flat("toan", 5, 6),
        flat("ngu_van", 3.4, 5.0),
        flat("ngoai_ngu_1", 6.5, 6.5),
        flat("lich_su", 7, 8),
        flat("khtn", 5.5, 4.5),
        flat("tin_hoc", 8.0, 9),
        commented("gdtc", "Đ", "CĐ"),
        commented("hdtn", "CĐ", "Đ"),
    ],
    "conduct": conduct("K", "Đ", "Đ"),
    "absences": 12,
}
TT22_INPUT = {"ruleset": "tt22", "students": [HS0001, HS0002]}
TT22_OUTPUT = (
    '{"students":['
    '{"id":"HS0001","subjects":{'
    '"toan":{"term1":9.3,"term2":9.4,"year":9.4},'  # (9.3 + 18.8) / 3 = 9.37
    '"ngu_van":{"term1":7.7,"term2":8.3,"year":8.1},'  # (7.7 + 16.6) / 3 = 8.1
    '"ngoai_ngu_1":{"term1":7.7,"term2":9.0,"year":8.6},'  # (7.7 + 18) / 3 = 8.57
    '"lich_su":{"term1":9.0,"term2":9.1,"year":9.1},'  # (9 + 18.2) / 3 = 9.07
    '"khtn":{"term1":9.5,"term2":9.9,"year":9.8},'  # (9.5 + 19.8) / 3 = 9.77
    '"tin_hoc":{"term1":8.6,"term2":9.0,"year":8.9},'  # (8.6 + 18) / 3 = 8.87
    '"gdtc":{"term1":"Đ","term2":"Đ","year":"Đ"},'
    '"hdtn":{"term1":"Đ","term2":"Đ","year":"Đ"}},'
    # Term I: 6th best 7.7 < 8.0, all >= 6.5: Khá. Term II and year: all >= 8.0: Tốt. Three >= 9.0: Giỏi.
    '"learning":{"term1":"K","term2":"T","year":"T"},"title":"gioi","outcome":"promoted"},'
    '{"id":"HS0002","subjects":{'
    '"toan":{"term1":5.0,"term2":6.0,"year":5.7},'
    '"ngu_van":{"term1":3.4,"term2":5.0,"year":4.5},'  # (3.4 + 10) / 3 = 4.47
    '"ngoai_ngu_1":{"term1":6.5,"term2":6.5,"year":6.5},'
    '"lich_su":{"term1":7.0,"term2":8.0,"year":7.7},'
    '"khtn":{"term1":5.5,"term2":4.5,"year":4.8},'
    '"tin_hoc":{"term1":8.0,"term2":9.0,"year":8.7},'
    '"gdtc":{"term1":"Đ","term2":"CĐ","year":"CĐ"},'
    '"hdtn":{"term1":"CĐ","term2":"Đ","year":"Đ"}},'
    # Term I: 3.4 is below 3.5. Term II: five >= 5.0. Year: four >= 5.0. Conduct Đạt: re-assessment.
    '"learning":{"term1":"CĐ","term2":"CĐ","year":"CĐ"},"title":null,"outcome":"reassessment"}'
    "]}\n"
)
GDTX_CODES = ("toan", "ngu_van", "lich_su", "dia_li", "tin_hoc")
GDTX = {
    "id": "GDTX01",
    "subjects": [flat(code, 9, 9.0) for code in GDTX_CODES] + [commented("hdtn", "Đ", "Đ")],
    "conduct": conduct("T", "T", "T"),
    "absences": 0,
}
TT43_INPUT = {"ruleset": "tt43", "students": [GDTX]}
TT43_OUTPUT = (
    '{"students":[{"id":"GDTX01","subjects":{'
    + ",".join(f'"{code}":{{"term1":9.0,"term2":9.0,"year":9.0}}' for code in GDTX_CODES)
    + ',"hdtn":{"term1":"Đ","term2":"Đ","year":"Đ"}},'
    # Five subjects are enough under TT43 (under TT22 they would be Chưa đạt).
    '"learning":{"term1":"T","term2":"T","year":"T"},"title":"xuat_sac","outcome":"promoted"}]}\n'
)
QUALITIES = {"yeu_nuoc": "T", "nhan_ai": "T", "cham_chi": "T", "trung_thuc": "T", "trach_nhiem": "T"}
COMPETENCIES = {"tu_chu_tu_hoc": "T", "giao_tiep_hop_tac": "T", "gq_van_de_sang_tao": "T"}


def pupil(pupil_id: str, *, toan: int, tieng_viet: int, dao_duc: str = "T", **marks: dict) -> dict:
    return {
        "id": pupil_id,
        "subjects": [
            {"code": "tieng_viet", "level": "T", "test_score": tieng_viet},
            {"code": "toan", "level": "T", "test_score": toan},
            {"code": "dao_duc", "level": dao_duc},
        ],
        "qualities": marks.get("qualities", QUALITIES),
        "competencies": marks.get("competencies", COMPETENCIES),
    }


TT27_INPUT = {
    "ruleset": "tt27",
    "students": [
        pupil("HS-TH-1", toan=9, tieng_viet=10),
        pupil("HS-TH-2", toan=8, tieng_viet=10),
        pupil("HS-TH-3", toan=10, tieng_viet=10, dao_duc="H"),
        pupil("HS-TH-4", toan=10, tieng_viet=5, competencies={**COMPETENCIES, "giao_tiep_hop_tac": "Đ"}),
        pupil("HS-TH-5", toan=4, tieng_viet=10),
    ],
}
TT27_OUTPUT = (
    '{"students":[{"id":"HS-TH-1","result":"HTXS"},{"id":"HS-TH-2","result":"HTT"},'
    '{"id":"HS-TH-3","result":"HT"},{"id":"HS-TH-4","result":"HT"},{"id":"HS-TH-5","result":"CHT"}]}\n'
)


def batch_with(*changes, ruleset: str = "tt22", size: int = 4) -> dict:
    """`size` good students (the fourth is HS0042), then each change(students) applied."""
    model = HS0001 if ruleset != "tt27" else TT27_INPUT["students"][0]
    students = [copy.deepcopy(model) for _ in range(size)]
    for index, student in enumerate(students):
        student["id"] = "HS0042" if index == 3 else f"HS000{index + 1}"
    for change in changes:
        change(students)
    return {"ruleset": ruleset, "students": students}


def set_path(path: str, value: object):
    """A change that sets students[...] at a dotted path, e.g. "3.subjects.1.term2.mid"."""

    def change(students: list) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = students
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def drop_path(path: str):
    def change(students: list) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = students
        for part in parents:
            target = target[part]
        del target[last]

    return change


def as_bytes(payload: dict | str | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, ensure_ascii=False).encode()


def json_error_position(text: str) -> str:
    """Where json itself places the syntax error in `text`."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno} column {exc.colno} (char {exc.pos})"
    raise AssertionError("valid JSON")


# --- End to end, in subprocesses -------------------------------------------------------------

TRUNCATED = '{"ruleset": "tt22", "students": [{"id": "HS0001",'

GOOD = {"tt22": (TT22_INPUT, TT22_OUTPUT), "tt27": (TT27_INPUT, TT27_OUTPUT)}
# One batch holds several faulty students (all are reported), so that few processes are started.
# name: (input, how stderr's lines start: each faulty student by position and id, the field, the value)
MALFORMED = {
    "faulty secondary students": (
        batch_with(
            set_path("1.absences", -1),  # a negative absence count
            set_path("2.subjects.4.term1.regular.1", 7.25),  # a score with two decimals
            set_path("3.subjects.1.term2.mid", 11),  # a score of 11
            drop_path("4.subjects.0.term2"),  # a missing term
            set_path("5.conduct.year", "A"),  # a level not in the list
            size=7,
        ),
        [
            'students[1] (id "HS0002"): absences: -1 ',
            'students[2] (id "HS0003"): subjects[4].term1.regular[1]: 7.25 ',
            'students[3] (id "HS0042"): subjects[1].term2.mid: 11 ',
            'students[4] (id "HS0005"): subjects[0].term2: ',
            'students[5] (id "HS0006"): conduct.year: "A" ',
        ],
    ),
    "faulty primary pupils": (
        batch_with(
            set_path("0.subjects.2.level", "Đ"),  # a subject level not in the list
            set_path("3.subjects.1.test_score", 0),  # a test score of 0
            ruleset="tt27",
        ),
        [
            'students[0] (id "HS0001"): subjects[2].level: "Đ" ',
            'students[3] (id "HS0042"): subjects[1].test_score: 0 ',
        ],
    ),
    "an unknown rule set": ({"ruleset": "tt99", "students": []}, ['ruleset: "tt99" ']),
    "invalid JSON": (TRUNCATED, ["students[0]: "]),
}


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["HOCBA_TESTING"] = "1"
    # Nothing listens there: the command must never open the database.
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/no-database"
    return env


@pytest.fixture(scope="module")
def runs() -> dict[str, subprocess.CompletedProcess]:
    """Every end-to-end case, run at the same time."""
    cases = {f"good {name}": payload for name, (payload, _) in GOOD.items()}
    cases |= {name: payload for name, (payload, _) in MALFORMED.items()}
    env = _environment()
    started = {
        name: subprocess.Popen(
            [sys.executable, "manage.py", "evaluate"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in cases
    }
    finished = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(as_bytes(cases[name]), timeout=60)
        finished[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return finished


@pytest.mark.parametrize("ruleset", list(GOOD))
def test_it_writes_the_exact_output_for_a_good_batch(runs, ruleset):
    run = runs[f"good {ruleset}"]
    assert run.stderr.decode() == ""
    assert run.returncode == 0
    assert run.stdout.decode() == GOOD[ruleset][1]


@pytest.mark.parametrize("case", list(MALFORMED))
def test_it_refuses_malformed_input_naming_the_student_and_the_field(runs, case):
    run = runs[case]
    assert run.returncode != 0
    assert run.stdout == b""
    lines = run.stderr.decode().removeprefix("CommandError: ").splitlines()
    expected = MALFORMED[case][1]
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start)


def test_it_places_a_syntax_error_where_json_does(runs):
    assert runs["invalid JSON"].stderr.decode().endswith(f": {json_error_position(TRUNCATED)}\n")


def test_it_speaks_vietnamese_by_default(runs):
    with translation.override("vi"):
        in_vietnamese = gettext("%(value)s is above %(max)s") % {"value": 11, "max": 10}
    assert in_vietnamese != "11 is above 10"
    assert f"subjects[1].term2.mid: {in_vietnamese}\n" in runs["faulty secondary students"].stderr.decode()


# --- In-process: every refusal, in English ---------------------------------------------------


@pytest.fixture
def evaluate(monkeypatch):
    """evaluate(payload) -> the command's stdout, run in this process, in English."""

    def run(payload: dict | str | bytes, language: str = "en") -> str:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(as_bytes(payload))))
        out = io.StringIO()
        with translation.override(language):
            try:
                call_command("evaluate", stdout=out)
            finally:
                run.stdout = out.getvalue()
        return out.getvalue()

    return run


def refusal(evaluate, payload) -> str:
    with pytest.raises(CommandError) as raised:
        evaluate(payload)
    assert evaluate.stdout == ""  # nothing half-written
    return str(raised.value)


def test_it_gives_the_same_output_in_process(evaluate):
    assert evaluate(TT22_INPUT) == TT22_OUTPUT


def test_it_evaluates_continuing_education_with_five_subjects(evaluate):
    assert evaluate(TT43_INPUT) == TT43_OUTPUT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            set_path("3.subjects.1.term2.mid", 11),
            'students[3] (id "HS0042"): subjects[1].term2.mid: 11 is above 10',
        ),
        (set_path("0.subjects.0.term1.end", 10.5), "subjects[0].term1.end: 10.5 is above 10"),
        (set_path("0.subjects.0.term1.mid", -0.5), "subjects[0].term1.mid: -0.5 is below 0"),
        (drop_path("0.subjects.0.term2"), 'students[0] (id "HS0001"): subjects[0].term2: is missing'),
        (drop_path("0.subjects.0.term1.mid"), "subjects[0].term1.mid: is missing"),
        (set_path("2.subjects.4.term1.regular.1", 7.25), "regular[1]: 7.25 has more than one decimal"),
        (set_path("0.subjects.0.term1.regular.0", True), "regular[0]: true is not a number"),
        (set_path("0.subjects.0.term1.regular.0", "7.5"), 'regular[0]: "7.5" is not a number'),
        (
            set_path("0.subjects.0.term1.regular", [8]),
            "term1.regular: at least 2 regular scores are needed, 1 given",
        ),
        (set_path("0.subjects.0.term1", "Đ"), "subjects[0].term1: must be an object"),
        (set_path("1.absences", -1), 'students[1] (id "HS0002"): absences: -1 is below 0'),
        (set_path("1.absences", 2.5), "absences: 2.5 is not a whole number"),
        (set_path("1.absences", 800), "absences: 800 is above 732"),
        (set_path("3.conduct.year", "A"), 'conduct.year: "A" is not one of "T", "K", "Đ", "CĐ"'),
        (drop_path("3.conduct.term2"), "conduct.term2: is missing"),
        (set_path("0.subjects.6.term2", "D"), 'subjects[6].term2: "D" is not one of "Đ", "CĐ"'),
        (set_path("0.subjects.6.scored", "no"), "subjects[6].scored: must be true or false"),
        (set_path("0.subjects.1.code", "toan"), 'subjects[1].code: "toan" is also the code of subjects[0]'),
        (set_path("0.subjects.1.code", ""), "subjects[1].code: must be a non-empty string"),
        (set_path("0.subjects", []), "subjects: must not be empty"),
        (set_path("0.subjects.0.term1.weight", 2), "subjects[0].term1.weight: unexpected field"),
        (set_path("0.name", "Nguyễn Văn An"), 'students[0] (id "HS0001"): name: unexpected field'),
        (drop_path("0.id"), "students[0]: id: is missing"),
        (set_path("0.id", 42), "students[0]: id: must be a non-empty string"),
        (set_path("0", [1, 2]), "students[0]: must be an object"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_it_says_what_is_wrong_with_a_secondary_student(evaluate, change, message):
    assert message in refusal(evaluate, batch_with(change)).splitlines()[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (set_path("0.subjects.2.level", "Đ"), 'subjects[2].level: "Đ" is not one of "T", "H", "C"'),
        (
            set_path("3.subjects.1.test_score", 0),
            'students[3] (id "HS0042"): subjects[1].test_score: 0 is below 1',
        ),
        (set_path("0.subjects.1.test_score", 11), "subjects[1].test_score: 11 is above 10"),
        (set_path("0.subjects.1.test_score", 9.5), "subjects[1].test_score: 9.5 is not a whole number"),
        (set_path("0.subjects.1.tests_core", 9), "subjects[1].tests_core: unexpected field"),
        (set_path("0.qualities.yeu_nuoc", "H"), 'qualities.yeu_nuoc: "H" is not one of "T", "Đ", "C"'),
        (set_path("0.competencies", {}), "competencies: must not be empty"),
        (drop_path("0.qualities"), "qualities: is missing"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_it_says_what_is_wrong_with_a_primary_pupil(evaluate, change, message):
    assert message in refusal(evaluate, batch_with(change, ruleset="tt27")).splitlines()[0]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"ruleset": "tt99", "students": []}, 'ruleset: "tt99" is not one of "tt22", "tt43", "tt27"'),
        ({"students": []}, "ruleset: is missing"),
        ({"ruleset": "tt22"}, "students: is missing"),
        ({"ruleset": "tt22", "students": {}}, "students: must be a list"),
        ({"ruleset": "tt22", "students": [], "year": "2025-2026"}, "year: unexpected field"),
        ([], 'The input must be a JSON object with the fields "ruleset" and "students".'),
        ("", "The input is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        ('{"ruleset": "tt22", "students": [NaN]}', "NaN is not a number JSON allows"),
        (b'{"ruleset": "tt22\xff"}', "not UTF-8 text"),
        ('{"ruleset": "tt22", "students": []} []', "Extra data: line 1 column 37 (char 36)"),
    ],
)
def test_it_says_what_is_wrong_with_the_batch(evaluate, payload, message):
    assert message in refusal(evaluate, payload)


def test_it_places_a_syntax_error_by_line_and_column_and_names_the_student(evaluate):
    text = json.dumps(TT22_INPUT, ensure_ascii=False, indent=1).replace('"absences": 12', '"absences": 12,')
    message = refusal(evaluate, text)
    assert message.startswith("students[1]: The input is not valid JSON: ")
    assert message.endswith(json_error_position(text))


def test_it_reports_every_faulty_student_up_to_twenty(evaluate):
    students = [copy.deepcopy(HS0001) for _ in range(30)]
    for index, student in enumerate(students):
        student["id"] = f"HS{index:04d}"
        if index % 6 != 5:  # 25 faulty students
            student["absences"] = -1
    lines = refusal(evaluate, {"ruleset": "tt22", "students": students}).splitlines()
    assert len(lines) == 21
    assert lines[0] == 'students[0] (id "HS0000"): absences: -1 is below 0'
    assert lines[19].startswith("students[22] ")
    assert lines[20] == "... and 5 more students with errors."


def test_it_explains_in_vietnamese_when_the_language_is_vietnamese(evaluate):
    with translation.override("vi"):
        expected = gettext("%(value)s is above %(max)s") % {"value": 11, "max": 10}
    with pytest.raises(CommandError) as raised:
        evaluate(batch_with(set_path("3.subjects.1.term2.mid", 11)), language="vi")
    assert str(raised.value) == f'students[3] (id "HS0042"): subjects[1].term2.mid: {expected}'


# --- In-process: what the contract allows ----------------------------------------------------


def test_it_answers_an_empty_batch_with_no_students(evaluate):
    assert evaluate({"ruleset": "tt27", "students": []}) == '{"students":[]}\n'


def test_it_reads_the_rule_set_after_the_students(evaluate):
    text = json.dumps({"students": TT22_INPUT["students"], "ruleset": "tt22"}, ensure_ascii=False)
    assert evaluate(text) == TT22_OUTPUT


def test_it_accepts_the_same_numbers_written_differently(evaluate):
    text = json.dumps(TT22_INPUT, ensure_ascii=False)
    rewritten = [("7.2,", "7.20,"), ('"mid": 9,', '"mid": 9.0,'), ('"end": 8}', '"end": 0.8e1}')]
    rewritten += [('"absences": 2}', '"absences": 2.0}')]
    for plain, written in rewritten:
        assert plain in text
        text = text.replace(plain, written)
    assert evaluate(text) == TT22_OUTPUT


def test_it_reads_input_split_at_any_byte(evaluate, monkeypatch):
    # Tiny windows: multi-byte letters (Đ) and numbers are cut across reads.
    text = json.dumps(TT22_INPUT, ensure_ascii=False, indent=2)
    for chunk in (1, 2, 3, 7):
        monkeypatch.setattr(command._JsonStream, "_CHUNK", chunk)
        assert evaluate(text) == TT22_OUTPUT


def test_it_places_a_syntax_error_correctly_across_reads(evaluate, monkeypatch):
    text = json.dumps(TT22_INPUT, ensure_ascii=False, indent=2).replace('"HS0002"', '"HS0002" "x"')
    monkeypatch.setattr(command._JsonStream, "_CHUNK", 5)
    assert refusal(evaluate, text).endswith(json_error_position(text))


def test_it_accepts_a_utf8_byte_order_mark(evaluate):
    assert evaluate(b"\xef\xbb\xbf" + as_bytes(TT43_INPUT)) == TT43_OUTPUT
