"""Template helpers: links into the current school."""

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def school_url(context, view_name: str, *args, school=None, **kwargs) -> str:
    """`{% school_url "schools:home" %}`: a URL inside the current (or the given) school."""
    school = school or context["request"].school
    return reverse(view_name, args=args, kwargs={"school_code": school.code, **kwargs})
