"""`manage.py evaluate < input.json > output.json`: apply a rule set to a batch of students.

The contract (input, output, refusals) and the code that reads, checks, evaluates and writes are
in transcripts.evaluate; this is the command around them. Input that breaks the contract raises
CommandError: the command exits non-zero, writes nothing on stdout, and lists the faults on stderr.

The database is never opened (no system checks, no models), so it runs anywhere the code is.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from transcripts.evaluate import evaluate_input, output_write


class Command(BaseCommand):
    help = "Apply a rule set (tt22, tt43, tt27) to the students read as JSON on stdin; results on stdout."

    # Runs without a database server: no system checks (they would inspect models and the DB).
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        stdin = getattr(sys.stdin, "buffer", None)
        data = stdin.read() if stdin is not None else sys.stdin.read().encode()
        chunks = evaluate_input(data)
        del data
        # Only now, when every student has passed, is anything written.
        output_write(self.stdout, chunks)
