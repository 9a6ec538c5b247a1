from django.urls import include, path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("so/", views.department_overview, name="department"),
    path("don-vi/<str:code>/", views.division_detail, name="division"),
    path("tra-cuu/", include("portal.views_verification")),
]
