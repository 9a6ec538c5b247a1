"""Imports of a school's data, mounted under /truong/<code>/du-lieu/ (exports: transcripts.urls_exports)."""

from django.urls import path

from . import views_data

app_name = "schooldata"

urlpatterns = [
    path("nhap/", views_data.data_import, name="import"),
    path("nhap/mau.xlsx", views_data.data_import_template, name="import_template"),
]
