from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TranscriptsConfig(AppConfig):
    name = "transcripts"
    verbose_name = _("Transcripts")

    def ready(self) -> None:
        # This app's part of the province's progress rows (portal.progress.services).
        from portal.progress.services import progress_part_register

        from .records.selectors import PROGRESS_FIELDS, progress_counts

        progress_part_register("transcripts", progress_counts, PROGRESS_FIELDS)
