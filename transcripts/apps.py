from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TranscriptsConfig(AppConfig):
    name = "transcripts"
    verbose_name = _("Transcripts")

    def ready(self) -> None:
        # This app's part of the province's progress rows (portal.progress.services).
        from portal.progress.services import progress_part_register

        from .records.selectors import BOOK_FIELDS, RECORD_FIELDS, progress_books, progress_records

        progress_part_register("books", progress_books, BOOK_FIELDS)
        progress_part_register("records", progress_records, RECORD_FIELDS)
