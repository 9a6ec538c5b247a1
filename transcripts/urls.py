from django.urls import path

from . import views

app_name = "transcripts"

urlpatterns = [
    path("", views.gradebook_index, name="index"),
    path("hoc-ki/<int:term_id>/khoa/", views.term_lock, name="term_lock"),
    path("lop/<int:class_id>/", views.homeroom, name="homeroom"),
    path("lop/<int:class_id>/o/", views.homeroom_cell_save, name="homeroom_cell_save"),
    path("lop/<int:class_id>/ket-qua/", views.results_compute, name="results_compute"),
    path("lop/<int:class_id>/phe-duyet/", views.year_close, name="year_close"),
    path("lop/<int:class_id>/he/o/", views.summer_cell, name="summer_cell_save"),
    path("lop/<int:class_id>/dong-so-he/", views.summer_close, name="summer_close"),
    path("<int:class_id>/<str:subject_code>/", views.gradebook, name="gradebook"),
    path("<int:class_id>/<str:subject_code>/o/", views.cell_save, name="cell_save"),
    path("<int:class_id>/<str:subject_code>/lich-su/", views.cell_history_view, name="cell_history"),
]
