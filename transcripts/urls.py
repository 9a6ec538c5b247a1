from django.urls import path

from . import views

app_name = "transcripts"

urlpatterns = [
    path("", views.gradebook_index, name="index"),
    path("<int:class_id>/<str:subject_code>/", views.gradebook, name="gradebook"),
    path("<int:class_id>/<str:subject_code>/o/", views.cell_save, name="cell_save"),
    path("<int:class_id>/<str:subject_code>/lich-su/", views.cell_history_view, name="cell_history"),
]
