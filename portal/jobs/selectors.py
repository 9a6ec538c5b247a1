"""Reads of the PDFs due (portal.PdfDue) for the operators."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import PdfDue


def pdf_due_failing() -> QuerySet[PdfDue]:
    """The PDFs whose render has failed at least once and that are still due, the most tried
    first, with their school (one query)."""
    return (
        PdfDue.objects.filter(attempts__gt=0).select_related("school").order_by("-attempts", "due_at", "id")
    )
