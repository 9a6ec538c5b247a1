"""The public verification pages, under /tra-cuu/ (config/urls.py)."""

from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("", views.verify, name="verify"),
    path("<str:record_id>/v<int:version>/", views.verify_record, name="verify_record"),
]
