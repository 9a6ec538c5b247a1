"""Vietnamese formats for the portal, over Django's (django/conf/locale/vi/formats.py).

Django's vi gives three forms ("Ngày 5 tháng 9 năm 2026", "05-09-2026", "H:i d-m-Y"); a person
reading the portal sees one: dd/mm/yyyy, and dd/mm/yyyy HH:MM for a moment (portal.formats, which
says why). Inputs keep ISO first, so a date field's initial value stays what <input type="date">
and the admin's calendar read; dd/mm/yyyy, as a teacher types it, is accepted too.
"""

DATE_FORMAT = "d/m/Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "d/m/Y H:i"
YEAR_MONTH_FORMAT = "m/Y"
MONTH_DAY_FORMAT = "d/m"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
FIRST_DAY_OF_WEEK = 1  # Monday

DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
]
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "."
NUMBER_GROUPING = 0  # no grouping of thousands, even with USE_THOUSAND_SEPARATOR (portal.formats)
