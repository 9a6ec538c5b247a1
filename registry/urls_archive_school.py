"""A school's archive of issued records, under /truong/<code>/luu-tru/ (config/urls_school.py)."""

from django.urls import path

from . import views_archive

app_name = "registry_school_archive"

urlpatterns = [
    path("", views_archive.school_archive, name="archive"),
    path("<str:school_year>/tai-ve/", views_archive.school_archive_download, name="download"),
]
