"""A student's personal data exported on request, under /truong/<code>/du-lieu-ca-nhan/
(config/urls_school.py)."""

from django.urls import path

from . import views_privacy

app_name = "registry_privacy"

urlpatterns = [
    path("<int:student_id>/", views_privacy.student_data_export_page, name="student_data_export"),
]
