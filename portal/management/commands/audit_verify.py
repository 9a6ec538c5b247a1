"""`manage.py audit_verify [--school CODE] [--table NAME] [--public-only]`: check the audit chains.

Every audit row is chained to the previous one by the database (portal migration 0021,
docs/security.md). This walks each chain (the public ones, then each school's) and prints the
first broken row of each: table, school, position, id, and what is wrong (changed, deleted,
inserted, the last rows deleted, the trigger off). Exit status 0 when every chain holds, 1 when
one does not, 2 for an unknown school, table or anchors file.

--heads FILE writes every chain's head (position and hash) as JSON once the chains hold: what to
publish or hand to the Department, so that a chain rewritten whole later is still caught;
--anchors FILE checks that each head in such a file is still in its chain.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from portal.audit_chain import PUBLIC_CHAINS, SCHOOL_CHAINS, Anchor, audit_chain_heads, audit_chain_verify


def _anchors(path: str) -> list[Anchor]:
    try:
        with open(path, encoding="utf-8") as file:
            heads = json.load(file)
        return [Anchor(h["schema"], h["table"], int(h["seq"]), str(h["hash"])) for h in heads]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CommandError(
            _("Cannot read the anchors file %(path)s: %(error)s") % {"path": path, "error": error},
            returncode=2,
        ) from error


class Command(BaseCommand):
    help = (
        "Check the hash chains of the audit logs (public and each school's): print the first broken "
        "row of each chain and what is wrong with it; exit status 1 when any chain is broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("--school", help="Only this school's chains (its code).")
        parser.add_argument(
            "--table", help=f"Only this table: one of {', '.join(PUBLIC_CHAINS + SCHOOL_CHAINS)}."
        )
        parser.add_argument("--public-only", action="store_true", help="Only the public chains.")
        parser.add_argument("--anchors", help="A heads file written earlier (--heads): check each is kept.")
        parser.add_argument("--heads", help="Write every chain's head to this file (JSON) when all hold.")

    def handle(self, *args, **options):
        with translation.override(settings.LANGUAGE_CODE):
            anchors = _anchors(options["anchors"]) if options["anchors"] else []
            try:
                report = audit_chain_verify(
                    school_code=options["school"],
                    table=options["table"],
                    public_only=options["public_only"],
                    anchors=anchors,
                )
            except LookupError as error:
                raise CommandError(
                    _("Unknown school code or chained table: %(name)s") % {"name": error.args[0]},
                    returncode=2,
                ) from error
            for broken in report.breaks:
                self.stdout.write(broken.line())
            figures = {"chains": report.chains, "rows": report.rows, "seconds": report.seconds}
            if report.ok:
                self.stdout.write(
                    _("Audit chains intact: %(chains)d chains, %(rows)d rows checked in %(seconds).1f s.")
                    % figures
                )
                if options["heads"]:
                    with open(options["heads"], "w", encoding="utf-8") as file:
                        json.dump(audit_chain_heads(), file, ensure_ascii=False, indent=1)
                    self.stdout.write(_("Heads written to %(path)s.") % {"path": options["heads"]})
            else:
                self.stdout.write(
                    _("%(broken)d problems: %(chains)d chains, %(rows)d rows checked in %(seconds).1f s.")
                    % {**figures, "broken": len(report.breaks)}
                )
        if not report.ok:
            raise SystemExit(1)
