"""Labels for the codes the rules produce."""

from django import template

from transcripts.choices import OUTCOME_LABELS, PRIMARY_RESULT_LABELS, TITLE_LABELS

register = template.Library()


@register.filter
def outcome_label(code):
    return OUTCOME_LABELS.get(code, code or "")


@register.filter
def title_label(code):
    return TITLE_LABELS.get(code, code or "")


@register.filter
def result_label(code):
    return PRIMARY_RESULT_LABELS.get(code, code or "")
