from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("so/", views.department_overview, name="department"),
    path("don-vi/<str:code>/", views.division_detail, name="division"),
]
