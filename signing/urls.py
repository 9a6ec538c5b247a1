from django.urls import path

from . import views

app_name = "signing"

urlpatterns = [
    path("", views.batches, name="batches"),
    path("bat-dau/", views.batch_start, name="batch_start"),
    path("con-dau/", views.seal_certificates, name="seal"),
    path("<int:batch_pk>/", views.batch_detail, name="batch"),
    path("<int:batch_pk>/tien-do/", views.batch_progress, name="batch_progress"),
    path("<int:batch_pk>/xac-nhan/", views.batch_confirm, name="batch_confirm"),
    path("<int:batch_pk>/gui-lai-ma/", views.batch_otp, name="batch_otp"),
    path("<int:batch_pk>/huy/", views.batch_cancel, name="batch_cancel"),
    path("<int:batch_pk>/ky-lai/", views.batch_retry, name="batch_retry"),
]
