"""`manage.py evaluate < input.json > output.json`: apply a rule set to a batch of students.

The contract (input, output, refusals) and the code that reads, checks, evaluates and writes are
in transcripts.evaluate; this is the command around them. Input that breaks the contract raises
CommandError: the command exits non-zero, writes nothing on stdout, and lists the faults on stderr.

The database is never opened (no system checks, no models), so it runs anywhere the code is.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile

from django.core.management.base import BaseCommand

from transcripts.evaluate import evaluate_input, input_source, output_write

# The output is kept in memory up to this size, past it in a temporary file, until every
# student has passed: only then is anything written on stdout.
_OUTPUT_IN_MEMORY = 16 << 20


def _cpus() -> int:
    """The CPUs this process may use; 1 where worker processes cannot be forked."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


class Command(BaseCommand):
    help = "Apply a rule set (tt22, tt43, tt27) to the students read as JSON on stdin; results on stdout."

    # Runs without a database server: no system checks (they would inspect models and the DB).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--jobs",
            type=int,
            default=_cpus(),
            help="Processes evaluating the students of a large batch at once (default: the CPUs this "
            "process may use); 1 evaluates them in this process.",
        )

    def handle(self, *args, **options):
        with tempfile.SpooledTemporaryFile(_OUTPUT_IN_MEMORY) as output:
            evaluate_input(input_source(sys.stdin), output, jobs=max(1, options["jobs"]))
            # Only now, when every student has passed, is anything written.
            output_write(self.stdout, output)
