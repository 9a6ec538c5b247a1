"""The batch: the top-level object read, every student checked and evaluated, every fault reported."""

from __future__ import annotations

import tempfile
from typing import IO

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from transcripts.rules import RuleSet, RuleSetError, ruleset_for

from .evaluator import MAX_REPORTED, _Evaluator
from .jsonstream import _JsonStream, _Source
from .parallel import _evaluate_in_parallel
from .students import _Invalid, _show

# Output is joined and written this many students at a time.
_OUTPUT_BATCH = 2000
# Input kept in memory, past it on disk, when the students come before the rule set.
_SPOOL_IN_MEMORY = 8 << 20


def evaluate_input(source: _Source, output: IO[bytes], *, jobs: int = 1) -> None:
    """Evaluate the JSON input read from `source`, writing the output to `output`; CommandError for
    any fault (and then whatever `output` holds is not the answer: the command writes nothing).

    The students are evaluated as they are read, so the rule set must be known by then: when
    "students" comes before "ruleset" in the object, the input is kept as it is read (in memory,
    on disk past _SPOOL_IN_MEMORY), the students are only read through (for their syntax), and the
    input is read a second time from what was kept. `jobs` > 1: processes that evaluate the
    students of a large batch at the same time (transcripts.evaluate.parallel).
    """
    with tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY) as kept:
        source.tee = kept
        ruleset, evaluated = _evaluate_pass(_JsonStream(source), None, output, jobs)
        if not evaluated:
            kept.seek(0)
            _, evaluated = _evaluate_pass(_JsonStream(_Source(kept)), ruleset, output, jobs)
            assert evaluated  # with the rule set known, a pass that returns has evaluated


def _evaluate_pass(
    stream: _JsonStream, known: RuleSet | None, output: IO[bytes], jobs: int
) -> tuple[RuleSet, bool]:
    if stream.peek() != "{":
        stream.value()  # a syntax error is the more useful message
        raise CommandError(_('The input must be a JSON object with the fields "ruleset" and "students".'))
    ruleset = known
    evaluated = False
    problems: list[str] = []
    seen: set[str] = set()
    for key in stream.members():
        if not seen and not (key == "students" and known is None):
            stream.source.tee = None  # the rule set comes first (or the input is faulty): one pass
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
                _Students(_Evaluator(ruleset), output).evaluate(stream, jobs)
                evaluated = True
        else:
            stream.value()
            problems.append(_Invalid(_("unexpected field"), key).describe())
    stream.source.tee = None
    stream.end()
    for key in ("ruleset", "students"):
        if key not in seen:
            problems.append(_Invalid(_("is missing"), key).describe())
    if problems:
        raise CommandError("\n".join(problems))
    assert ruleset is not None  # known, or read: a missing or unknown one is a problem above
    return ruleset, evaluated


def _ruleset(value: object) -> RuleSet:
    try:
        if type(value) is str:
            return ruleset_for(value)
    except RuleSetError:
        pass
    raise _Invalid(
        _("%(value)s is not one of %(choices)s")
        % {"value": _show(value), "choices": ", ".join(_show(code) for code in ("tt22", "tt43", "tt27"))}
    )


class _Students:
    """The students array evaluated: the outputs written in order, every fault counted.

    After the first fault the rest are only checked, not evaluated, since nothing will be written.
    """

    def __init__(self, evaluator: _Evaluator, output: IO[bytes]):
        self.evaluator = evaluator
        self.output = output
        self.index = 0  # students read so far
        self.faulty = 0
        self.problems: list[str] = []
        self._batch: list[str] = []
        self._written = 0

    def evaluate(self, stream: _JsonStream, jobs: int) -> None:
        """Read, check and evaluate the students one by one (those of a large batch in `jobs`
        processes); CommandError naming every faulty student (the first MAX_REPORTED)."""
        # A second "students" in the object: the last one is the answer, as json.loads would say.
        self.output.seek(0)
        self.output.truncate()
        self.output.write(b'{"students":[')
        stream.expect("[")
        student = self.evaluator.student
        try:
            if jobs > 1:
                _evaluate_in_parallel(self, stream, jobs)
            for raw in stream.items(read=self.index, compact=self.evaluator.compact):
                try:
                    text = student(raw, evaluate=not self.faulty)
                except _Invalid as exc:
                    self.faulty += 1
                    if self.faulty <= MAX_REPORTED:
                        self.problems.append(exc.describe_student(self.index, raw))
                else:
                    if not self.faulty:
                        self._batch.append(text)
                        if len(self._batch) == _OUTPUT_BATCH:
                            self._flush()
                self.index += 1
        except CommandError as exc:  # not JSON: said after the faults found before it
            self.problems.append(f"students[{self.index}]: {exc}")
            raise CommandError("\n".join(self.problems)) from None
        if self.faulty:
            if self.faulty > MAX_REPORTED:
                rest = self.faulty - MAX_REPORTED
                self.problems.append(
                    ngettext(
                        "... and %(count)d more student with errors.",
                        "... and %(count)d more students with errors.",
                        rest,
                    )
                    % {"count": rest}
                )
            raise CommandError("\n".join(self.problems))
        self._flush()
        self.output.write(b"]}\n")

    def merge(self, count: int, text: bytes, faults: list[tuple[int, str]], faulty: int) -> None:
        """Count `count` students evaluated elsewhere, in order: their output joined as `text`,
        their first faults as (position among them, _Invalid.about) and how many were faulty."""
        for position, about in faults:
            if len(self.problems) < MAX_REPORTED:
                self.problems.append(f"students[{self.index + position}]{about}")
        self.faulty += faulty
        if not self.faulty and text:
            self._flush()
            self.output.write(b"," + text if self._written else text)
            self._written += count
        self.index += count

    def _flush(self) -> None:
        if self._batch:
            text = ",".join(self._batch).encode()
            self.output.write(b"," + text if self._written else text)
            self._written += len(self._batch)
            self._batch.clear()
