"""drf-spectacular's description of the API key (a bearer token) and the schema/docs views.

The schema and its documentation page are public (they describe the API, no data): partners read
them before they hold a key. Swagger UI's assets come from drf-spectacular-sidecar (static files).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "registry.api.auth.PartnerKeyAuthentication"
    name = "partnerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "hbk_<prefix>_<secret>",
            "description": "The API key issued by the Department (docs/api.md).",
        }


class SchemaView(SpectacularAPIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class DocsView(SpectacularSwaggerView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
