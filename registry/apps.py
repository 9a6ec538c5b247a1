from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from schools import hooks as school_hooks
from transcripts import hooks  # no models: safe while the apps load (schools.hooks neither)


def _school_home_archive(request):
    """The archive's panel, imported when a front page is first drawn: registry.panels_archive
    brings in the archive's signing and PDF libraries (pyHanko: ~0.75 s of every process's start,
    management commands and workers included)."""
    from .panels_archive import school_home_archive

    return school_home_archive(request)


def _outbox_issued(*args, **kwargs):
    # registry.services (the verification of what is forwarded) is imported at the first issue.
    from .services import outbox_issued

    return outbox_issued(*args, **kwargs)


def _outbox_revoked(*args, **kwargs):
    from .services import outbox_revoked

    return outbox_revoked(*args, **kwargs)


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
        from .selectors import PROGRESS_FIELDS, progress_counts

        hooks.register(hooks.RECORD_ISSUED, _outbox_issued)
        hooks.register(hooks.RECORD_REVOKED, _outbox_revoked)
        # The school's front page shows its messages to the Ministry (schools.hooks).
        school_hooks.home_panel_register(school_home_forwarding)
        school_hooks.home_panel_register(_school_home_archive)  # its archive, for its leaders
        # This app's part of the province's progress rows: rejections by reason.
        progress_part_register("registry", progress_counts, PROGRESS_FIELDS)
