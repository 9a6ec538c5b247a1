"""URLs: the public site at /, each school under /truong/<code>/ (resolved by portal.middleware)."""

from django.conf import settings
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from portal.admin import admin_site
from portal.signout import sign_out
from registry.api.schema import DocsView


class ApiDocsView(SpectacularSwaggerSplitView, DocsView):
    """The API docs page with its start-up script from ?script rather than inline, for the
    Content-Security-Policy (templates/drf_spectacular/swagger_ui.html). Same access as DocsView;
    it answers /api/docs/ before registry.api.urls does."""


urlpatterns = [
    path("so/kho-hoc-ba/", include("registry.urls_operators")),  # forwarding to the Ministry
    path("so/luu-tru/", include("registry.urls_archive")),  # archives of issued records
    path("", include("portal.urls")),
    path("tra-cuu/", include("registry.urls")),  # the public verification pages
    path("api/docs/", ApiDocsView.as_view(url_name="api:schema")),
    path("api/", include("registry.api.urls")),  # the partner API (docs/api.md)
    path("accounts/logout/", sign_out),  # allauth's, clearing what the browser kept (portal.signout)
    path("accounts/", include("allauth.urls")),
    path("chu-ky-so/", include("signing.urls_account")),
    path("admin/", admin_site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path(f"{settings.SCHOOL_URL_PREFIX}/<str:school_code>/", include("config.urls_school")),
]
