"""The partner API under /api/ (config/urls.py): versioned endpoints, the schema, its docs page."""

from django.urls import path, re_path

from . import schema, views

app_name = "api"

urlpatterns = [
    path("v1/students/records/", views.StudentRecordsView.as_view(), name="student_records"),
    path(
        "v1/records/<str:record_id>/versions/<int:version>/xml/",
        views.RecordXmlView.as_view(),
        name="record_xml",
    ),
    path(
        "v1/records/<str:record_id>/versions/<int:version>/pdf/",
        views.RecordPdfView.as_view(),
        name="record_pdf",
    ),
    path("v1/verifications/", views.VerificationView.as_view(), name="verify_upload"),
    path("v1/progress/divisions/", views.ProgressDivisionsView.as_view(), name="progress_divisions"),
    path("v1/progress/schools/", views.ProgressSchoolsView.as_view(), name="progress_schools"),
    path("schema/", schema.SchemaView.as_view(), name="schema"),
    path("docs/", schema.DocsView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^.*$", views.not_found),
]
