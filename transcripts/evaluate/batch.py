"""The batch: the top-level object read, every student checked and evaluated, every fault reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from transcripts.rules import RuleSet, RuleSetError, ruleset_for

from .jsonstream import _JsonStream
from .output import _render_primary, _render_secondary
from .students import _Invalid, _primary_pupil, _secondary_student, _show

# Faulty students named on stderr; the rest are counted.
MAX_REPORTED = 20
# Output is joined and encoded this many students at a time.
_OUTPUT_BATCH = 2000


def evaluate_input(data: bytes) -> list[bytes]:
    """The output of every student, as chunks of UTF-8 JSON; CommandError for any fault.

    The students are evaluated as they are read, so the rule set must be known by then: when
    "students" comes before "ruleset" in the object, the students are first only read through (for
    their syntax) and the input is read a second time.
    """
    ruleset, chunks = _evaluate_pass(data, None)
    if chunks is None:
        _, chunks = _evaluate_pass(data, ruleset)
        assert chunks is not None  # with the rule set known, a pass that returns has evaluated
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
    assert ruleset is not None  # known, or read: a missing or unknown one is a problem above
    return ruleset, chunks


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


def _evaluate_students(ruleset: RuleSet, stream: _JsonStream) -> list[bytes]:
    """Read, check and evaluate the students one by one; every faulty student is reported.

    After the first fault the rest are only checked, not evaluated, since nothing will be written.
    """
    read: Callable[[object], tuple[str, object]]
    render: Callable[[str, Any], str]  # takes what ruleset.evaluate returns (Any) for its kind
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
