from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("so/", views.department_overview, name="department"),
    path("so/truc-thuoc/", views.department_direct, name="department_direct"),
    path("don-vi/<str:code>/", views.division_detail, name="division"),
    path("giam-sat/truong/<str:code>/", views.school_progress, name="school_progress"),
]
