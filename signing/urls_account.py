from django.urls import path

from . import views

app_name = "signing_account"

urlpatterns = [
    path("", views.my_certificates, name="certificates"),
]
