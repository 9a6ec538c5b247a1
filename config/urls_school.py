"""Every page of a school, mounted under /truong/<code>/ by config.urls.

The tenant isolation test walks this list, so a page added here is covered automatically.
"""

from django.urls import include, path

urlpatterns = [
    path("", include("schools.urls")),
    path("so-diem/", include("transcripts.urls")),
    path("du-lieu/", include("schools.urls_data")),
    path("du-lieu/", include("transcripts.urls_exports")),  # the score sheet, same URL as before
    path("hoc-ba/", include("transcripts.urls_book")),
    path("ky-so/", include("signing.urls")),
    path("luu-tru/", include("registry.urls_archive_school")),  # its archive of issued records
    path("du-lieu-ca-nhan/", include("registry.urls_privacy_school")),  # a student's data, on request
]
