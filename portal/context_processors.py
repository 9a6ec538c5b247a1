from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, object]:
    return {
        "current_school": getattr(request, "school", None),
        "LANGUAGES": settings.LANGUAGES,
    }
