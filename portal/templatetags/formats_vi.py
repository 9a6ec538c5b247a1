"""`{% load formats_vi %}`: numbers and dates as a Vietnamese reader writes them (portal.formats).

`{{ row.term1|vi_number }}`: "5.9" (as the signed XML writes it) or Decimal("5.9") → "5,9";
a grade ("Đ") passes unchanged. `{{ day|vi_date }}` → "05/09/2026"; `{{ moment|vi_moment }}` →
"05/09/2026 14:30" in the province's time. Django's own `{{ day|date }}` gives the same forms
(config/formats/); these filters are for values that are not dates yet, or for the PDF, which is
Vietnamese whatever the reader's language.
"""

from __future__ import annotations

from django import template

from portal.formats import date_vi, moment_vi, number_vi

register = template.Library()


@register.filter(is_safe=True)
def vi_number(value, places=None):
    """`{{ value|vi_number }}` or `{{ value|vi_number:1 }}` (rounded to one decimal)."""
    return number_vi(value, places=None if places in (None, "") else int(places))


@register.filter(is_safe=False)
def vi_date(value):
    return date_vi(value) if value else ""


@register.filter(is_safe=False)
def vi_moment(value):
    return moment_vi(value) if value else ""
