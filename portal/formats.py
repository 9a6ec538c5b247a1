"""How a person reads a number or a date in the portal: one Vietnamese form, whatever the language.

Issue 14: scores appeared as 6,5 in the grade book but 5.9 on the public page and in the PDF, and
dates in three forms. Every page, the PDF and the admin now write:

- a decimal with a comma: 6,5 and 8,25, with the places the rules gave it (a score or an average
  is a Decimal quantized to a tenth, so 7,0 stays 7,0); no grouping of thousands (a count of
  records is 1200: the dot Vietnamese puts in 1.200 is the decimal point of the machine form);
- a day as dd/mm/yyyy, and a moment as dd/mm/yyyy HH:MM in the province's time (Asia/Ho_Chi_Minh).

The same forms hold in English: the records are Vietnamese documents, and an English reader of a
Vietnamese transcript reads its dates the way the paper form prints them (config/formats/ makes
Django's `{{ d|date }}` and `{{ d }}` agree with these functions in both languages).

What machines read keeps the machine forms: the signed XML (xs:decimal with a dot, ISO dates),
JSON, CSV manifests, and the .xlsx exports, whose scores are numeric cells that the spreadsheet
shows in its reader's locale. Pure: no database, no settings beyond the time zone.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

DATE_FORMAT = "%d/%m/%Y"
MOMENT_FORMAT = "%d/%m/%Y %H:%M"
LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")  # the province's zone (settings.TIME_ZONE)

# A decimal written by a machine ("5.9", "-0.25", "10"): the only text number_vi rewrites, so a
# grade ("Đ", "CĐ", "T") or a code passes through as it is.
_MACHINE_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def number_vi(value: object, *, places: int | None = None) -> str:
    """A number as a Vietnamese reader writes it: "6,5", "8,25", "10"; "" for None.

    `places`: round to that many decimals (half up for a Decimal, as the rules do); without it a
    Decimal keeps its own places (Decimal("7.0") is "7,0") and a float its shortest form. Text
    that is a machine-written decimal ("5.9", from the signed XML) is rewritten; other text
    (a grade, "Đ") is returned unchanged.
    """
    if value is None:
        return ""
    if isinstance(value, bool):  # a bool is an int: not a number a person reads
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if not _MACHINE_DECIMAL.fullmatch(text):
            return value
        value = Decimal(text)
    if isinstance(value, int):
        return str(value) if places is None else number_vi(Decimal(value), places=places)
    if isinstance(value, float):
        text = repr(value) if places is None else f"{value:.{places}f}"
    elif not isinstance(value, Decimal):
        return str(value)  # not a number: as it is
    elif not value.is_finite():
        return ""
    elif places is None:
        text = format(value, "f")
    else:
        text = format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")
    return text.replace(".", ",")


def date_vi(value: dt.date | dt.datetime | None) -> str:
    """A day as dd/mm/yyyy (a moment is first taken to the province's time); "" for None."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = _local(value)
    return value.strftime(DATE_FORMAT)


def moment_vi(value: dt.datetime | None) -> str:
    """A moment as dd/mm/yyyy HH:MM in the province's time; "" for None."""
    if value is None:
        return ""
    return _local(value).strftime(MOMENT_FORMAT)


def _local(value: dt.datetime) -> dt.datetime:
    # A naive datetime is already local time (style.md rule 16 forbids them; read them kindly).
    return value.astimezone(LOCAL_TIME) if value.tzinfo is not None else value
