"""Imports and exports of a school's data, mounted under /truong/<code>/du-lieu/."""

from django.urls import path

from . import views_data

app_name = "schooldata"

urlpatterns = [
    path("nhap/", views_data.data_import, name="import"),
    path("nhap/mau.xlsx", views_data.data_import_template, name="import_template"),
    path("xuat/<int:class_id>/", views_data.score_sheet, name="score_sheet"),
]
