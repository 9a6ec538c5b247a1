from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from schools import hooks as school_hooks
from transcripts import hooks  # no models: safe while the apps load (schools.hooks neither)


class RegistryConfig(AppConfig):
    """The top of the chain (design.md §2): what happens to an issued record outside its school."""

    name = "registry"
    verbose_name = _("Registry")

    def ready(self) -> None:
        # Transcripts tells registry of each issue and revocation, in its own transaction, through
        # hooks (transcripts sits below registry and never imports it). Services import models:
        # only once ready.
        from portal.progress.services import progress_part_register

        from .panels import school_home_forwarding
        from .panels_archive import school_home_archive
        from .selectors import PROGRESS_FIELDS, progress_counts
        from .services import outbox_issued, outbox_revoked

        hooks.register(hooks.RECORD_ISSUED, outbox_issued)
        hooks.register(hooks.RECORD_REVOKED, outbox_revoked)
        # The school's front page shows its messages to the Ministry (schools.hooks).
        school_hooks.home_panel_register(school_home_forwarding)
        school_hooks.home_panel_register(school_home_archive)  # its archive, for its leaders
        # This app's part of the province's progress rows: rejections by reason.
        progress_part_register("registry", progress_counts, PROGRESS_FIELDS)
