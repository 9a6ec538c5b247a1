"""The valid secondary scores as shared Decimals, and the JSON number parser that yields them.

Scores are read as Decimals straight from the JSON text, never through binary floats; a valid
score always comes back as the same object, so the fast reader recognises it by identity.
"""

from __future__ import annotations

from decimal import Decimal

# Every valid secondary score, 0.0, 0.1, ... 10.0, as one shared Decimal each.
_VALID_SCORES = [Decimal(tenths).scaleb(-1) for tenths in range(101)]
# Keyed by value: an int 7, a Decimal 7.5 or 7.50 all find their shared Decimal (equal numbers
# hash equal; True equals 1 too, so the careful reader rules booleans out first).
_SCORES: dict[object, Decimal] = dict(zip(_VALID_SCORES, _VALID_SCORES, strict=True))
# Keyed by identity, for the fast reader: a JSON number that is a valid score is parsed either to
# one of the shared Decimals (_Literals below) or to an int from 0 to 10, which CPython also
# shares. So one dict lookup on id() recognises a valid score, without hashing a Decimal, and
# nothing else can pass (not True, not 11, not 7.25); whatever fails goes to the careful reader.
# The value is the score's number of tenths (7.5 -> 75), which the rules compute with.
_TENTHS_BY_ID: dict[int, int] = {id(score): tenths for tenths, score in enumerate(_VALID_SCORES)} | {
    id(number): 10 * number for number in range(11)
}
_tenths_by_id = _TENTHS_BY_ID.__getitem__


class _Literals(dict):
    """JSON number text -> Decimal, for json's parse_float: valid scores come back as the shared
    Decimals (so _TENTHS_BY_ID knows them), anything else as a new Decimal. Never a binary float."""

    def __missing__(self, text: str) -> Decimal:
        number = Decimal(text)
        try:
            return _SCORES.get(number, number)
        except TypeError:  # a signalling NaN cannot be hashed; JSON has none, but be safe
            return number


_LITERALS = _Literals({f"{tenths // 10}.{tenths % 10}": score for tenths, score in enumerate(_VALID_SCORES)})
