"""The Department's archives of issued records, under /so/luu-tru/ (config/urls.py)."""

from django.urls import path

from . import views_archive

app_name = "registry_archive"

urlpatterns = [
    path("", views_archive.archives, name="archives"),
    path("<int:export_pk>/tai-ve/", views_archive.archive_download, name="download"),
]
