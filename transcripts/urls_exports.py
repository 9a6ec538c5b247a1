"""A school's Excel exports of transcripts' data, mounted under /truong/<code>/du-lieu/ beside the imports."""

from django.urls import path

from . import views_exports

app_name = "transcripts_exports"

urlpatterns = [
    path("xuat/<int:class_id>/", views_exports.score_sheet, name="score_sheet"),
]
