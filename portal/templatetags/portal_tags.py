"""Template helpers: links into the current school."""

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def school_url(context, view_name: str, school=None, **kwargs) -> str:
    """`{% school_url "schools:home" %}`: a URL inside the current (or the given) school.

    Arguments are given by name (Django's reverse() does not mix positional and named ones).
    """
    school = school or context["request"].school
    return reverse(view_name, kwargs={"school_code": school.code, **kwargs})


@register.filter
def get_item(mapping, key):
    """`{{ row.cells|get_item:field }}`: a dict lookup by a variable key."""
    return mapping.get(key, "") if mapping else ""


@register.filter
def split(value: str) -> list[str]:
    return value.split()


@register.filter
def attr(obj, name: str):
    """`{{ year|attr:field }}`: an attribute by a variable name (None when the object is None)."""
    return getattr(obj, name, None) if obj is not None else None
