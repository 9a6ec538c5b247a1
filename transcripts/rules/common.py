"""What every rule set shares: exact decimal arithmetic, half-up rounding to one decimal, the levels.

The circulars round averages "to one decimal" the way a teacher does by hand: half up, so 7.65
becomes 7.7. Binary floats hold most such numbers only approximately (4.35 is 4.3499999...), and an
average computed in floats can land just below the half ((7.5 + 9.5 + 7.7 + 2·6.1 + 3·8.1) / 8 is
7.6499999999999995, not 7.65). So every number is a Decimal, and a float that comes in is
converted through its shortest text: str(4.35) == "4.35".

All arithmetic goes through one module-level context (CONTEXT) rather than the thread's current
one: a caller that changed `decimal.getcontext()` cannot change a result, and no context is
created per student.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from enum import StrEnum

# 28 digits, the decimal module's default. Sums and products of one-decimal scores are exact; an
# average is k / (10·d) with d at most a few dozen, so one that is not exactly on a half (x.x5) is
# at least 1/(20·d) away from it, and a 28-digit quotient can never cross the rounding boundary:
# quantizing it half up gives the exact half-up rounding of the true average.
CONTEXT = Context(prec=28, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])
TENTH = Decimal("0.1")


class Rating(StrEnum):
    """Conduct (rèn luyện) and learning (học tập) results in TT22/TT43, per term and per year."""

    GOOD = "T"  # Tốt
    FAIR = "K"  # Khá
    ACHIEVED = "Đ"  # Đạt
    NOT_ACHIEVED = "CĐ"  # Chưa đạt


# "At least Đạt": the results that allow promotion.
PASSING_RATINGS = frozenset({Rating.GOOD, Rating.FAIR, Rating.ACHIEVED})


class CommentGrade(StrEnum):
    """The value of a comment-only subject (môn đánh giá bằng nhận xét)."""

    ACHIEVED = "Đ"  # Đạt
    NOT_ACHIEVED = "CĐ"  # Chưa đạt


def to_decimal(value: Decimal | int | float | str) -> Decimal:
    """A number as an exact Decimal; a float goes through str(), so 7.65 stays 7.65."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def round_half_up(value: Decimal) -> Decimal:
    """Round to one decimal, half up: 7.65 -> 7.7, 8.25 -> 8.3, 6.45 -> 6.5.

    tt22 rounds its averages the same way, written out in place for speed.
    """
    return value.quantize(TENTH, rounding=ROUND_HALF_UP, context=CONTEXT)
