from django.urls import path

from . import views, views_guides

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("so/", views.department_overview, name="department"),
    path("so/truc-thuoc/", views.department_direct, name="department_direct"),
    path("don-vi/<str:code>/", views.division_detail, name="division"),
    path("giam-sat/truong/<str:code>/", views.school_progress, name="school_progress"),
    path("huong-dan/chu-ky-so/", views_guides.signatures, name="signatures"),  # public
    path("huong-dan/<str:code>/an/", views_guides.dismiss, name="guide_dismiss"),
    path("huong-dan/<str:code>/mo-lai/", views_guides.reopen, name="guide_reopen"),
]
