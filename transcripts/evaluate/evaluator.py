"""One student's JSON read, checked, evaluated and rendered: what the stream and every worker run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from transcripts.rules import RuleSet

from .output import _render_in_tenths, _render_primary, _render_secondary
from .students import (
    _compact_secondary,
    _Invalid,
    _NotPlain,
    _plain_secondary_in_tenths,
    _primary_pupil,
    _secondary_student,
)

# Faulty students named on stderr; the rest are counted.
MAX_REPORTED = 20


class _Evaluator:
    """A rule set's reader, rules and renderer for one student's JSON."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self._read: Callable[[object], tuple[str, object]]
        self._render: Callable[[str, Any], str]  # takes what ruleset.evaluate returns for its kind
        if ruleset.kind == "secondary":
            self._read, self._render = _secondary_student, _render_secondary
        else:
            self._read, self._render = _primary_pupil, _render_primary
        self._evaluate = ruleset.evaluate
        self._in_tenths = ruleset.evaluate_in_tenths
        # What the stream may read a student with, from its text (students are given as JSON
        # values otherwise): the compact secondary form, for the rules in tenths.
        self.compact = _compact_secondary if ruleset.evaluate_in_tenths is not None else None
        # How many students the last call of `students` read (its raws may be an iterator).
        self.counted = 0

    def student(self, raw: object, *, evaluate: bool = True) -> str:
        """The student's output as compact JSON text ("" unless `evaluate`); _Invalid if faulty."""
        in_tenths = self._in_tenths
        if in_tenths is not None:
            try:
                if type(raw) is tuple:  # read from its compact text (self.compact)
                    student_id, layout, scored, comments1, comments2, conduct, absences = raw
                else:
                    student_id, layout, scored, comments1, comments2, conduct, absences = (
                        _plain_secondary_in_tenths(raw)
                    )
            except (_NotPlain, KeyError, TypeError):
                pass  # unusual, valid or not: the careful reader's
            else:
                if not evaluate:
                    return ""
                year = in_tenths(scored, comments1, comments2, conduct_year=conduct, absences=absences)
                return _render_in_tenths(student_id, layout, year)
        student_id, student = self._read(raw)
        return self._render(student_id, self._evaluate(student)) if evaluate else ""

    def students(
        self, raws: Iterable[object], *, evaluate: bool = True
    ) -> tuple[list[str], list[tuple[int, str]], int]:
        """Every student of `raws`: their outputs (none once one is faulty, or unless `evaluate`),
        the first MAX_REPORTED faults as (position in raws, _Invalid.about), and how many are faulty."""
        outputs: list[str] = []
        faults: list[tuple[int, str]] = []
        faulty = 0
        student = self.student
        self.counted = 0
        for index, raw in enumerate(raws):
            self.counted = index + 1
            try:
                output = student(raw, evaluate=evaluate and not faulty)
            except _Invalid as exc:
                faulty += 1
                if faulty <= MAX_REPORTED:
                    faults.append((index, exc.about(raw)))
            else:
                if not faulty and evaluate:
                    outputs.append(output)
        return outputs, faults, faulty
