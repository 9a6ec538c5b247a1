from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    """The top of the chain (design.md §2): what happens to an issued record outside its school."""

    name = "registry"
    verbose_name = _("Registry")
