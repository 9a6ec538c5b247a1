"""Reading one JSON document a value at a time, from a window of decoded text (_JsonStream)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import IO, cast

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from .scores import _LITERALS

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


class _Source:
    """The input's bytes, read a chunk at a time from a binary file, with bytes put back in front.

    `unread` gives back what a reader took and did not use (the parallel path hands the students it
    did not evaluate back to the stream). `tee`, when set, receives a copy of every chunk read.
    """

    def __init__(self, file: IO[bytes] | None = None, data: bytes = b""):
        self._file = file
        self._back: list[bytes] = [data] if data else []
        self.tee: IO[bytes] | None = None

    def read(self, size: int) -> bytes:
        """Up to `size` bytes (more when bytes were put back); b"" at the end."""
        if self._back:
            chunk = self._back.pop()
        elif self._file is not None:
            chunk = self._file.read(size)
        else:
            chunk = b""
        if self.tee is not None:
            self.tee.write(chunk)
        return chunk

    def unread(self, data: bytes) -> None:
        if data:
            self._back.append(data)


class _JsonStream:
    """One JSON document in UTF-8 bytes, read a value at a time from a window of decoded text.

    json.loads on a province's batch would hold every student as Python objects at once (several
    GB for 200,000 students); here only the current window (about _CHUNK characters) and the value
    being read are, and the input itself is read from its file a chunk at a time. Members of the
    top object and items of an array are walked by hand; every value inside them is parsed by
    json's C scanner. Syntax errors raise CommandError with the line and column in the whole input.
    """

    _CHUNK = 1 << 20
    # A single value (one student) larger than this is refused rather than read without end.
    _MAX_WINDOW = 64 << 20

    def __init__(self, source: _Source):
        self.source = source
        # utf-8-sig: a byte order mark at the very start is dropped (as if absent).
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._eof = False
        self._text = ""
        self._pos = 0
        # Where self._text starts in the whole input, for error messages.
        self._offset = 0
        self._line = 1
        self._column = 1
        self._scan = json.JSONDecoder(
            parse_float=_LITERALS.__getitem__, parse_constant=_reject_constant
        ).raw_decode

    @classmethod
    def over_text(cls, text: str) -> _JsonStream:
        """A stream over a document already decoded, whole."""
        stream = cls(_Source())
        stream._text = text
        stream._eof = True
        return stream

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end)."""
        while True:
            # The pattern matches the empty string too: there is always a match.
            self._pos = cast(re.Match[str], _WHITESPACE.match(self._text, self._pos)).end()
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._more():
                return ""

    def value(self) -> object:
        """The next complete JSON value."""
        self.peek()
        while True:
            try:
                value, end = self._scan(self._text, self._pos)
            except json.JSONDecodeError as exc:
                # Most often the value runs past the window: read on and try again.
                if len(self._text) - self._pos < self._MAX_WINDOW and self._more():
                    continue
                raise self._error(exc.msg, exc.pos) from None
            except ValueError as exc:  # NaN, Infinity
                raise self._error(str(exc), self._pos) from None
            # A number at the very end of the window may go on in the next chunk.
            if end == len(self._text) and self._more():
                continue
            self._pos = end
            return value

    def members(self) -> Iterator[str]:
        """The keys of an object, one at a time; the caller reads each value."""
        self.expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self._error("Expecting property name enclosed in double quotes", self._pos)
            key = cast(str, self.value())  # a JSON string: it starts with a double quote
            self.expect(":")
            yield key
            if self._separator("}"):
                return

    def items(
        self,
        *,
        read: int | None = None,
        compact: Callable[[str, int], tuple[tuple, int] | None] | None = None,
    ) -> Iterator[object]:
        """The items of an array, one at a time.

        With `read`, the array's "[" was already read, and that many of its items (elsewhere).
        With `compact`, an item it reads from the text (a tuple, and where the item's text ends)
        is given as that tuple, not parsed (students.py: _compact_secondary).
        """
        if read is None:
            self.expect("[")
            read = 0
        if not read:
            if self.peek() == "]":
                self._pos += 1
                return
        elif self._separator("]"):
            return
        while True:
            found = None
            if compact is not None:
                self.peek()
                found = compact(self._text, self._pos)
            if found is not None:
                item, self._pos = found
                yield item
            else:
                yield self.value()
            if self._separator("]"):
                return

    def end(self) -> None:
        if self.peek():
            raise self._error("Extra data", self._pos)

    def _separator(self, closing: str) -> bool:
        """After a member or item: True at the closing bracket, False after a comma."""
        found = self.peek()
        if found not in (",", closing):
            raise self._error(f"Expecting ',' or '{closing}' delimiter", self._pos)
        self._pos += 1
        return found == closing

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self._error(f"Expecting '{char}'", self._pos)
        self._pos += 1

    def detach(self) -> bytes:
        """The input from the current position on that the stream has taken from its source, as
        bytes, handed to the caller, who reads on from `source` and gives back with
        `source.unread` and `advance` whatever it does not consume itself."""
        self._drop_read()
        buffered, _ = self._decoder.getstate()
        rest = self._text.encode() + buffered
        self._text = ""
        self._decoder.setstate((b"", 0))  # 0: the start, and a byte order mark, are behind
        return rest

    def advance(self, chars: int, newlines: int, last_line: int) -> None:
        """Count text read elsewhere since detach: `chars` characters, `newlines` of them line
        breaks, `last_line` characters after the last break (error messages place by them)."""
        self._offset += chars
        if newlines:
            self._line += newlines
            self._column = last_line + 1
        else:
            self._column += chars

    def _drop_read(self) -> None:
        """Drop the text before the position, counting its lines for error messages."""
        read = self._text[: self._pos]
        if read:
            newlines = read.count("\n")
            self.advance(len(read), newlines, len(read) - read.rfind("\n") - 1)
            self._text = self._text[self._pos :]
            self._pos = 0

    def _more(self) -> bool:
        """Decode the next chunk onto the window, dropping what was read; False at the end."""
        if self._eof:
            return False
        self._drop_read()
        chunk = self.source.read(self._CHUNK)
        self._eof = not chunk
        try:
            self._text += self._decoder.decode(chunk, self._eof)
        except UnicodeDecodeError as exc:
            self._eof = True
            raise self._error(f"not UTF-8 text ({exc.reason})", len(self._text)) from None
        return True

    def _error(self, message: str, pos: int) -> CommandError:
        before = self._text[:pos]
        newlines = before.count("\n")
        if newlines:
            line, column = self._line + newlines, pos - before.rfind("\n")
        else:
            line, column = self._line, self._column + pos
        where = f"{message}: line {line} column {column} (char {self._offset + pos})"
        return CommandError(_("The input is not valid JSON: %(error)s") % {"error": where})
