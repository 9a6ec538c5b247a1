"""Reading one JSON document a value at a time, from a window of decoded text (_JsonStream)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import cast

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from .scores import _LITERALS

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


class _JsonStream:
    """One JSON document in UTF-8 bytes, read a value at a time from a window of decoded text.

    json.loads on a province's batch would hold every student as Python objects at once (several
    GB for 200,000 students); here only the current window (about _CHUNK characters) and the value
    being read are. Members of the top object and items of an array are walked by hand; every
    value inside them is parsed by json's C scanner. Syntax errors raise CommandError with the
    line and column in the whole input.
    """

    _CHUNK = 1 << 20
    # A single value (one student) larger than this is refused rather than read without end.
    _MAX_WINDOW = 64 << 20

    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._next = 3 if data[:3] == codecs.BOM_UTF8 else 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
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
        self._expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self._error("Expecting property name enclosed in double quotes", self._pos)
            key = cast(str, self.value())  # a JSON string: it starts with a double quote
            self._expect(":")
            yield key
            if self._separator("}"):
                return

    def items(self) -> Iterator[object]:
        """The items of an array, one at a time."""
        self._expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
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

    def _expect(self, char: str) -> None:
        if self.peek() != char:
            raise self._error(f"Expecting '{char}'", self._pos)
        self._pos += 1

    def _more(self) -> bool:
        """Decode the next chunk onto the window, dropping what was read; False at the end."""
        if self._eof:
            return False
        read = self._text[: self._pos]
        if read:
            newlines = read.count("\n")
            if newlines:
                self._line += newlines
                self._column = len(read) - read.rfind("\n")
            else:
                self._column += len(read)
            self._offset += len(read)
            self._text = self._text[self._pos :]
            self._pos = 0
        chunk = self._data[self._next : self._next + self._CHUNK]
        self._next += len(chunk)
        self._eof = self._next >= len(self._data)
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
