from django.urls import path

from . import views, views_offline, views_records

app_name = "transcripts"

urlpatterns = [
    path("", views.gradebook_index, name="index"),
    path("sw.js", views_offline.service_worker, name="service_worker"),  # the grade book offline
    path("hoc-ki/<int:term_id>/khoa/", views.term_lock, name="term_lock"),
    path("lop/<int:class_id>/", views.homeroom, name="homeroom"),
    path("lop/<int:class_id>/o/", views.homeroom_cell_save, name="homeroom_cell_save"),
    path("lop/<int:class_id>/ket-qua/", views.results_compute, name="results_compute"),
    path("lop/<int:class_id>/phe-duyet/", views.year_close, name="year_close"),
    path("lop/<int:class_id>/he/o/", views.summer_cell, name="summer_cell_save"),
    path("lop/<int:class_id>/dong-so-he/", views.summer_close, name="summer_close"),
    path("ho-so/lop/<int:class_id>/", views_records.records_class, name="records_class"),
    path("ho-so/lop/<int:class_id>/tao/", views_records.records_create, name="records_create"),
    path("ho-so/lop/<int:class_id>/xac-nhan/", views_records.records_confirm_all, name="records_confirm_all"),
    path("ho-so/<int:record_pk>/xac-nhan/", views_records.record_confirm, name="record_confirm"),
    path("ho-so/<int:record_pk>/dinh-chinh/", views_records.record_correct, name="record_correct"),
    path(
        "ho-so/<int:record_pk>/duyet-dinh-chinh/",
        views_records.record_correction_approve,
        name="record_correction_approve",
    ),
    path("ho-so/<int:record_pk>/thu-hoi/", views_records.record_revoke, name="record_revoke"),
    path("ho-so/<int:record_pk>/xml/", views_records.record_xml, name="record_xml"),
    path("ho-so/<int:record_pk>/pdf/", views_records.record_pdf, name="record_pdf"),
    path("<int:class_id>/<str:subject_code>/", views.gradebook, name="gradebook"),
    path("<int:class_id>/<str:subject_code>/o/", views.cell_save, name="cell_save"),
    path("<int:class_id>/<str:subject_code>/lich-su/", views.cell_history_view, name="cell_history"),
]
