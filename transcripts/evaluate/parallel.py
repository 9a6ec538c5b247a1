"""A large batch's students evaluated by several processes at once, in order, memory flat.

The input is cut into pieces of about _BLOCK bytes, each a run of whole students, and each piece
is read, checked, evaluated and rendered by a worker process (fork: the code is already loaded;
a worker that dies makes the command fail, never hang);
the results are taken back in input order, at most _IN_FLIGHT pieces at a time, so memory does
not grow with the batch.

Where to cut is a guess that is then proved. A piece ends just before a comma followed by an
object that opens with the first student's first key (`,{"id":`, whitespace allowed): nearly
always the comma between two students. The worker parses "[" + piece + "]" (the piece without
its leading comma) as JSON, and that parse succeeds only if the cut was right: a piece starts
where a student starts (the first one just after a student read by the stream; each next one
where its predecessor, proved, ended), and if its end were not between two students, it would
end inside a string or inside a nested object or list, and no single "]" can close that. A
piece that fails (a wrong guess, or input that is not JSON) and every piece after it are handed
back to the stream, which reads them one student at a time and names the error where it is.
The tail of the input (the last piece, the end of the array and of the object) is always the
stream's. Each worker also counts its piece's characters and lines, so that the stream's error
messages still place an error by line and column in the whole input.

A cut that was right gives the same students as the stream would read, in the same order, with
the same decoder (the same numbers, the same refusals), so the output is byte for byte the same.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import re
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

from django.core.management.base import CommandError
from django.utils import translation

from transcripts.rules import ruleset_for

from .evaluator import _Evaluator
from .jsonstream import _JsonStream

if TYPE_CHECKING:
    from .batch import _Students

# About this many bytes of input a piece; a piece past _MAX_PIECE without a cut ends the
# parallel reading (the stream reads the rest, and refuses a student larger than its window).
_BLOCK = 1 << 20
_MAX_PIECE = _JsonStream._MAX_WINDOW
# Pieces given out and not yet taken back, per worker: enough to keep every worker busy.
_IN_FLIGHT_PER_WORKER = 3
_WHITESPACE = rb"[ \t\n\r]*"

# What a worker answers for a piece: how many students, their output joined (UTF-8), the first
# faults (position in the piece, _Invalid.about), how many are faulty, and the piece's text:
# characters, line breaks, characters after the last line break. None: the piece is not a run
# of whole students (see the module's docstring).
_Piece = tuple[int, bytes, list[tuple[int, str]], int, int, int, int]


def _evaluate_in_parallel(students: _Students, stream: _JsonStream, jobs: int) -> None:
    """Evaluate the students of a large batch in `jobs` worker processes, from just after the
    array's "[" up to where the stream must take over (see the module's docstring); the stream
    is left there, with students.index students read."""
    if stream.peek() in ("]", ""):
        return
    first = stream.value()
    # The first student is the stream's: it shows how a student opens, and where it ends is a
    # proved cut.
    _take_one(students, first)
    if type(first) is not dict or not first or stream.peek() != ",":
        return
    first_key = json.dumps(next(iter(first)), ensure_ascii=False).encode()
    cut = re.compile(b"," + _WHITESPACE + rb"\{" + _WHITESPACE + re.escape(first_key) + _WHITESPACE + b":")
    source = stream.source
    buffer = bytearray(stream.detach())
    pool: ProcessPoolExecutor | None = None
    in_flight: deque[tuple[bytes, Future[_Piece | None]]] = deque()
    end = False
    try:
        while True:
            # The next piece: up to the first cut found past _BLOCK bytes.
            found = None
            while True:
                if len(buffer) > _BLOCK:
                    found = cut.search(buffer, _BLOCK)
                    if found is not None or len(buffer) > _MAX_PIECE:
                        break
                if end:
                    break
                chunk = source.read(_BLOCK)
                if chunk:
                    buffer += chunk
                else:
                    end = True
            if found is None:  # the tail, or a piece too large: the stream's
                break
            with memoryview(buffer) as view:
                piece = bytes(view[: found.start()])
            del buffer[: found.start()]
            if pool is None:
                pool = ProcessPoolExecutor(
                    jobs,
                    multiprocessing.get_context("fork"),
                    initializer=_start_worker,
                    initargs=(students.evaluator.ruleset.code, translation.get_language()),
                )
            in_flight.append((piece, pool.submit(_evaluate_piece, piece, not students.faulty)))
            if len(in_flight) >= jobs * _IN_FLIGHT_PER_WORKER and not _take(students, stream, in_flight):
                break
        while in_flight and _take(students, stream, in_flight):
            pass
        # What is left, from the first piece not taken on: the stream's.
        source.unread(b"".join(piece for piece, _ in in_flight) + bytes(buffer))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _take_one(students: _Students, raw: object) -> None:
    """One student evaluated in this process, counted as the stream's loop would."""
    outputs, faults, faulty = students.evaluator.students([raw], evaluate=not students.faulty)
    students.merge(1, outputs[0].encode() if outputs else b"", faults, faulty)


def _take(
    students: _Students, stream: _JsonStream, in_flight: deque[tuple[bytes, Future[_Piece | None]]]
) -> bool:
    """Take the oldest piece's answer; False (and the piece left in place) if it was not a run of
    whole students."""
    answer = in_flight[0][1].result()
    if answer is None:
        return False
    in_flight.popleft()
    count, text, faults, faulty, chars, newlines, last_line = answer
    students.merge(count, text, faults, faulty)
    stream.advance(chars, newlines, last_line)
    return True


# In each worker process: the students' evaluator.
_WORKER: _Evaluator | None = None


def _start_worker(ruleset_code: str, language: str | None) -> None:
    global _WORKER
    _WORKER = _Evaluator(ruleset_for(ruleset_code))
    # What the worker inherited is never garbage: the collector leaves it alone (walking it would
    # also copy every page the fork shares with the command, and it took longer than the work).
    gc.freeze()
    if language:  # the messages of faults in the command's language
        translation.activate(language)


def _evaluate_piece(piece: bytes, evaluate: bool) -> _Piece | None:
    """A piece's students read, checked, evaluated and rendered; None if it is not a run of whole
    students starting with a comma (see the module's docstring)."""
    assert _WORKER is not None  # set by _start_worker
    try:
        text = piece.decode()
    except UnicodeDecodeError:
        return None
    rest = text.lstrip(" \t\n\r")
    if not rest.startswith(","):
        return None
    # One student at a time, as the stream reads them (each evaluated while its objects are
    # still in the processor's cache), from "[" + the piece without its comma + "]".
    stream = _JsonStream.over_text("[" + rest[1:] + "]")
    try:
        outputs, faults, faulty = _WORKER.students(stream.items(compact=_WORKER.compact), evaluate=evaluate)
        stream.end()
    except (CommandError, RecursionError):  # not JSON, or nested too deep for the decoder
        return None
    count = _WORKER.counted
    if not count:
        return None
    newlines = text.count("\n")
    last_line = len(text) - text.rfind("\n") - 1
    return count, ",".join(outputs).encode(), faults, faulty, len(text), newlines, last_line
