"""How fast the TT22 rules evaluate a province-sized batch, in-process and through `manage.py evaluate`.

    .venv/bin/python bench/evaluate.py [--n 200000] [--seed 2026] [--small 50000] [--jobs N]

Generates N students in memory (deterministic random: the same seed gives the same batch), each with
12 scored subjects (2, 3 or 4 regular scores a term, as the subject's periods say) and 4
comment-only subjects, then measures:

(a) the rules in-process: tt22.evaluate over the students already built as dataclasses (the rules
    alone, as a service computing a class or a school would call them);
(b) the command end to end: `manage.py evaluate` as a subprocess, the batch written to its stdin
    as JSON and its JSON output read back (process start, Django setup, parsing and checking the
    input, the rules, writing the output);

and prints students per second for each, the ratio of (a) to (b), (b) against the 10 s target of
issue 15, the size of the JSON in and out, the command's CPU time (with its worker processes, if
any) and its peak memory. The command is run a second time on the first --small students (a
quarter by default): memory that does not grow with the batch (streamed) shows as the same peak at
both sizes. It checks that the command's output is, byte for byte, the in-process results
rendered the command's way, at both sizes. No database is needed: the command never opens one.
Progress goes to stderr, the figures to stdout.

The script runs unchanged on the code before issue 15 (7462b61) for the before figures; --jobs
is passed to the command only when given (the command before issue 15 has no such option; since,
its default is the number of CPUs).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# These need ROOT on sys.path; none of them reads settings.
from transcripts.evaluate.output import _render_secondary  # noqa: E402
from transcripts.rules import tt22  # noqa: E402
from transcripts.rules.common import CommentGrade, Rating  # noqa: E402

DEFAULT_N = 200_000
# Issue 15: 200,000 students end to end in less than this many seconds.
TARGET_SECONDS = 10.0
# Code -> regular scores a term (2 for 35 periods a year, 3 for 35-70, 4 for more).
SCORED = {
    "toan": 4,
    "ngu_van": 4,
    "ngoai_ngu_1": 4,
    "lich_su": 3,
    "dia_li": 3,
    "vat_li": 3,
    "hoa_hoc": 3,
    "sinh_hoc": 3,
    "tin_hoc": 2,
    "cong_nghe": 2,
    "gdktpl": 3,
    "gdqp_an": 2,
}
COMMENT = ("gdtc", "hdtn_hn", "gddp", "am_nhac")
# A score is the student's level plus a spread around it, in tenths (triangular, +-2.5 points).
_DELTAS = list(range(-25, 26))
_CUM_WEIGHTS = [sum(26 - abs(d) for d in _DELTAS[: i + 1]) for i in range(len(_DELTAS))]
_LEVELS = list(range(40, 96))  # a student's level, 4.0 to 9.5
_CONDUCT = ["T"] * 70 + ["K"] * 22 + ["Đ"] * 7 + ["CĐ"]
_SCORE_VALUES = [Decimal(tenths).scaleb(-1) for tenths in range(101)]
_SCORE_TEXT = [f"{tenths // 10}.{tenths % 10}" for tenths in range(101)]
_TERM = '{"regular":[%s],"mid":%s,"end":%s}'
_SCORED = '{"code":"%s","scored":true,"term1":%s,"term2":%s}'
_COMMENT = '{"code":"%s","scored":false,"term1":"%s","term2":"%s"}'
_STUDENT = '{"id":"%s","subjects":[%s],"conduct":{"term1":"%s","term2":"%s","year":"%s"},"absences":%d}'


def say(message: str = "") -> None:
    print(message, flush=True)


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def generate(n: int, seed: int) -> list[dict]:
    """N students in the command's input shape; scores as tenths (ints), turned into JSON later."""
    rng = random.Random(seed)
    per_student = sum((count + 2) * 2 for count in SCORED.values())
    students = []
    for index in range(n):
        level = rng.choice(_LEVELS)
        deltas = iter(rng.choices(_DELTAS, cum_weights=_CUM_WEIGHTS, k=per_student))
        subjects: list[dict] = []
        for code, count in SCORED.items():
            terms = {}
            for term in ("term1", "term2"):
                scores = [min(100, max(0, level + next(deltas))) for _ in range(count + 2)]
                terms[term] = {"regular": scores[:count], "mid": scores[count], "end": scores[count + 1]}
            subjects.append({"code": code, "scored": True, **terms})
        for code in COMMENT:
            subjects.append(
                {
                    "code": code,
                    "scored": False,
                    "term1": "CĐ" if rng.random() < 0.02 else "Đ",
                    "term2": "CĐ" if rng.random() < 0.01 else "Đ",
                }
            )
        conduct = rng.choice(_CONDUCT)
        students.append(
            {
                "id": f"HS{index:07d}",
                "subjects": subjects,
                "conduct": {"term1": rng.choice(_CONDUCT), "term2": conduct, "year": conduct},
                "absences": rng.choice((0, 0, 0, 1, 2, 3, 5, 8, 12, 20, 30, 44, 45, 46, 60)),
            }
        )
    return students


def to_json(students: list[dict]) -> bytes:
    """The command's input, compact: scores in tenths become JSON numbers with one decimal (7.5, 8.0).

    Written with string formatting (json.dumps of 200,000 students took longer than the command).
    """

    def term(raw: dict) -> str:
        regular = ",".join(_SCORE_TEXT[s] for s in raw["regular"])
        return _TERM % (regular, _SCORE_TEXT[raw["mid"]], _SCORE_TEXT[raw["end"]])

    def subject(raw: dict) -> str:
        if raw["scored"]:
            return _SCORED % (raw["code"], term(raw["term1"]), term(raw["term2"]))
        return _COMMENT % (raw["code"], raw["term1"], raw["term2"])

    def student(raw: dict) -> str:
        subjects = ",".join(subject(s) for s in raw["subjects"])
        conduct = raw["conduct"]
        ratings = (conduct["term1"], conduct["term2"], conduct["year"])
        return _STUDENT % (raw["id"], subjects, *ratings, raw["absences"])

    return ('{"ruleset":"tt22","students":[' + ",".join(map(student, students)) + "]}").encode()


def to_dataclasses(students: list[dict]) -> list[tt22.SecondaryStudent]:
    def term(raw: dict) -> tt22.TermScores:
        return tt22.TermScores(
            regular=tuple(_SCORE_VALUES[s] for s in raw["regular"]),
            mid=_SCORE_VALUES[raw["mid"]],
            end=_SCORE_VALUES[raw["end"]],
        )

    def subject(raw: dict) -> tt22.Subject:
        if raw["scored"]:
            return tt22.ScoredSubject(raw["code"], term(raw["term1"]), term(raw["term2"]))
        return tt22.CommentSubject(raw["code"], CommentGrade(raw["term1"]), CommentGrade(raw["term2"]))

    return [
        tt22.SecondaryStudent(
            subjects=tuple(subject(s) for s in student["subjects"]),
            conduct=tt22.Ratings(*(Rating(student["conduct"][k]) for k in ("term1", "term2", "year"))),
            absences=student["absences"],
        )
        for student in students
    ]


class PeakMemory:
    """The command's peak resident memory, sampled until it exits: its own (VmHWM), and that of
    the whole process tree (the command and its worker processes, VmRSS summed at each sample;
    pages the workers share with the command after fork are counted in each, so an upper bound).

    getrusage(RUSAGE_CHILDREN) would count this process's own memory, which the child shares
    between fork and exec.
    """

    def __init__(self, pid: int):
        self.mib = 0.0
        self.tree_mib = 0.0
        self.processes = 1
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _field(pid: int, name: str) -> float:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith(name):
                return int(line.split()[1]) / 1024
        return 0.0

    def _tree(self, pid: int) -> list[int]:
        pids = [pid]
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return pids
        for child in children:
            pids += self._tree(int(child))
        return pids

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            if not Path(f"/proc/{self._pid}").exists():
                return
            self.mib = max(self.mib, self._field(self._pid, "VmHWM:"))
            tree = self._tree(self._pid)
            self.processes = max(self.processes, len(tree))
            self.tree_mib = max(self.tree_mib, sum(self._field(pid, "VmRSS:") for pid in tree))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def children_cpu() -> float:
    """User + system CPU seconds of the waited-for children (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(payload: bytes, jobs: int | None) -> tuple[bytes, float, float, PeakMemory]:
    """`manage.py evaluate` on `payload`: its stdout, wall and CPU seconds, and peak memory."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "HOCBA_TESTING": "1"}
    command = [sys.executable, "manage.py", "evaluate"]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    cpu = children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env
    )
    peak = PeakMemory(process.pid)
    stdout, stderr = process.communicate(payload)
    wall = time.perf_counter() - started
    peak.stop()
    if process.returncode != 0:
        sys.stderr.write(stderr.decode(errors="replace"))
        raise SystemExit(1)
    return stdout, wall, children_cpu() - cpu, peak


def rendered(results: list) -> bytes:
    """The command's output for these in-process results."""
    text = ",".join(_render_secondary(f"HS{i:07d}", result) for i, result in enumerate(results))
    return f'{{"students":[{text}]}}\n'.encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help=f"students (default {DEFAULT_N:,})")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--small",
        type=int,
        default=None,
        help="students of the second run, for flatness (default n/4; 0: none)",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="passed to the command as --jobs (default: not)"
    )
    args = parser.parse_args()
    n = args.n
    small = n // 4 if args.small is None else min(args.small, n)

    progress(f"generating {n:,} students (seed {args.seed})")
    raw = generate(n, args.seed)
    students = to_dataclasses(raw)
    payload = to_json(raw)
    small_payload = to_json(raw[:small]) if small else b""
    del raw

    progress("(a) rules in-process")
    started = time.perf_counter()
    results = [tt22.evaluate(student) for student in students]
    in_process = time.perf_counter() - started
    del students

    progress("(b) manage.py evaluate as a subprocess")
    stdout, end_to_end, cpu, peak = run_command(payload, args.jobs)
    progress("checking that both agree on every student")
    assert stdout == rendered(results), "the command and the rules disagree"
    output_size = len(stdout)
    del stdout
    if small:
        progress(f"(b) again on the first {small:,} students, for the memory")
        small_stdout, small_seconds, small_cpu, small_peak = run_command(small_payload, args.jobs)
        assert small_stdout == rendered(results[:small]), "the command and the rules disagree"
        del small_stdout

    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    say(f"evaluate benchmark: {n:,} TT22 students, 12 scored + 4 comment subjects each (seed {args.seed})")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    say(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load {load}")
    jobs = "the command's default" if args.jobs is None else str(args.jobs)
    say(f"--jobs: {jobs}; input JSON {len(payload) / 1e6:,.1f} MB, output JSON {output_size / 1e6:,.1f} MB")
    say(f"(a) rules in-process:         {n / in_process:>10,.0f} students/s  ({in_process:.2f} s)")
    say(f"(b) manage.py evaluate (e2e): {n / end_to_end:>10,.0f} students/s  ({end_to_end:.2f} s)")
    say(f"ratio (a) / (b): {end_to_end / in_process:.2f}x")
    if n == DEFAULT_N:
        verdict = "met" if end_to_end < TARGET_SECONDS else "NOT met"
        say(
            f"target < {TARGET_SECONDS:.0f} s end to end: "
            f"{end_to_end / TARGET_SECONDS:.2f}x the target ({verdict})"
        )
    say(f"command CPU time (user + sys, with its workers): {cpu:.2f} s ({cpu / n * 1e6:.1f} us per student)")
    say(
        f"command peak memory, {n:,} students: {peak.mib:,.0f} MiB (the command's VmHWM); "
        f"{peak.tree_mib:,.0f} MiB with its workers (processes: {peak.processes}, VmRSS summed)"
    )
    if small:
        say(
            f"command peak memory, {small:,} students: {small_peak.mib:,.0f} MiB (the command's VmHWM); "
            f"{small_peak.tree_mib:,.0f} MiB with its workers ({small_seconds:.2f} s, CPU {small_cpu:.2f} s)"
        )
        say(f"memory at {n:,} / at {small:,} students: {peak.mib / small_peak.mib:.2f}x (flat: about 1)")
    say("outcomes: " + ", ".join(f"{key} {count:,}" for key, count in sorted(outcomes.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
