"""The Department's forwarding page, under /so/kho-hoc-ba/ (config/urls.py)."""

from django.urls import path

from . import views_operators

app_name = "registry_operators"

urlpatterns = [
    path("", views_operators.forwarding, name="forwarding"),
    path("gui-lai/<int:message_pk>/", views_operators.forwarding_replay, name="replay"),
    path("gui-lai-tat-ca/", views_operators.forwarding_replay_all, name="replay_all"),
]
