"""Check an archive of issued records offline and say what is wrong with each file (registry.archive_check).

Reads the ZIP only: no network, no database, no file written. Exit status 0 when everything holds,
1 when some file has a problem, 2 when the archive is refused unread (not a ZIP, hostile).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from registry.archive_check import archive_check


class Command(BaseCommand):
    help = (
        "Check an archive made by export_archive, offline: every file present and unchanged per the "
        "manifest, nothing unlisted, every record's signatures against the archive's own roots and "
        "CRLs, every PDF embedding its XML. One line per file with a problem; exit status 0 only "
        "when all holds (1: problems, 2: refused)."
    )
    requires_system_checks: list = []  # offline: nothing of the deployment is needed

    def add_arguments(self, parser):
        parser.add_argument("file", help="The archive (ZIP).")
        parser.add_argument("--json", action="store_true", help="Print the findings as JSON.")
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="Worker processes verifying the signatures side by side (a province's archive: the CPUs).",
        )
        parser.add_argument(
            "--manifest-sha256",
            default="",
            help="The manifest's SHA-256 recorded when the archive was made (export_archive prints it).",
        )

    def handle(self, *args, **options):
        # pyHanko logs each path it cannot build with a traceback; the findings already say it,
        # once, per file.
        logging.getLogger("pyhanko").setLevel(logging.ERROR)
        with translation.override(settings.LANGUAGE_CODE):
            try:
                with open(options["file"], "rb") as file:
                    result = archive_check(
                        file,
                        manifest_sha256=options["manifest_sha256"] or None,
                        jobs=max(1, min(options["jobs"], 64)),
                    )
            except OSError as error:
                raise CommandError(f"{options['file']}: {error}", returncode=2) from error
            if options["json"]:
                self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
            else:
                for finding in result.findings:
                    self.stdout.write(finding.line())
                for note in result.notes:
                    self.stdout.write(
                        _("Note, not included when the archive was made: %(what)s") % {"what": note}
                    )
                if result.refused:
                    summary = _("Archive refused, not checked.")
                elif result.ok:
                    summary = _(
                        "Archive intact: %(files)d files, %(records)d year records, "
                        "%(signatures)d signatures, %(pdfs)d PDFs (%(seals)d sealed) checked; no problem."
                    )
                else:
                    summary = _(
                        "%(problems)d problems in %(bad)d files (%(files)d files, %(records)d year records, "
                        "%(signatures)d signatures, %(pdfs)d PDFs (%(seals)d sealed) checked)."
                    )
                self.stdout.write(
                    summary
                    % {
                        "files": result.files_checked,
                        "records": result.records_checked,
                        "signatures": result.signatures_checked,
                        "pdfs": result.pdfs_checked,
                        "seals": result.pdf_signatures_checked,
                        "problems": len(result.findings),
                        "bad": len(result.paths()),
                    }
                )
        if not result.ok:
            raise SystemExit(2 if result.refused else 1)
