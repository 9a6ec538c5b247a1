from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchoolsConfig(AppConfig):
    name = "schools"
    verbose_name = _("School data")

    def ready(self) -> None:
        # This app's part of the province's progress rows (portal.progress.services).
        from portal.progress.services import progress_part_register, progress_years_register

        from .selectors import PROGRESS_FIELDS, progress_counts, progress_years

        progress_part_register("schools", progress_counts, PROGRESS_FIELDS)
        progress_years_register(progress_years)

        # A teacher's classes across the schools where they work, on the portal's home page.
        from portal.hooks import classes_reader_register

        from .selectors import teacher_classes_across

        classes_reader_register(teacher_classes_across)
