"""`{% can_export_personal_data as allowed %}`: may the user export this school's students' personal
data? Lets a lower app's page (the student's book, transcripts) offer the export without its view
importing registry."""

from django import template

from portal.permissions import can_export_personal_data as _can_export

register = template.Library()


@register.simple_tag(takes_context=True)
def can_export_personal_data(context: template.Context) -> bool:
    request = context.get("request")
    school = getattr(request, "school", None)
    user = getattr(request, "user", None)
    return bool(
        school is not None and user is not None and user.is_authenticated and _can_export(user, school)
    )
