"""The missing-PDF sweep (beat's `transcripts.tasks.year_record_pdfs_missing`): time, statements and
messages of one sweep over 2,000 issued records without a PDF spread over 50 schools (issue 15).

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/pdf_sweep.py \
        [--schools 50] [--records 2000] [--sweeps 5]

Runs in a throwaway database (bench/support.py). N schools are provisioned; each gets one class,
one student and records/N year records, issued (status, three signature rows, the index row), made
in bulk. Then, as at issue, `year_record_pdfs_render(pks)` in each school's transaction (what the
lifecycle calls); the messages it sends are dropped, as if lost, and the clock of this process is
moved two hours on (the old sweep's 5-minute grace and the new one's queued mark both run out).
Then the sweep is run --sweeps times in a row, and for each run this prints its wall time, its
SQL statements (their time, their number, and without django-tenants' `SET search_path`), the
school schemas it touched, and the render messages it queued (counted in the broker, LLEN).

It uses only `year_record_pdfs_render` and `year_record_pdfs_missing`, which both versions have,
so it runs unchanged on the commit before issue 15 (the sweep that visits every school that issued
in 14 days and queues every record again at each run) and after (one statement on the public
table of PDFs due, each record once). The render messages go to a queue of the bench's own in
the Redis of REDIS_URL, deleted at the end. Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import throwaway_django

QUEUE = f"bench-pdf-sweep-{os.getpid()}"


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def make_world(schools: int, records: int):
    """N schools with their issued records (no PDF); returns [(school, [record pks])]."""
    from django.db import connection

    from portal.choices import SchoolLevel
    from portal.models import Department, User
    from portal.provisioning import SchoolSpec, school_provision
    from portal.services import issued_record_add
    from schools.models import SchoolYear, Student
    from schools.services import class_create, school_year_open, student_enrol
    from transcripts.choices import SIGNING_ORDER
    from transcripts.document import year_record_xml
    from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.transcripts.test_document import secondary_record

    Department.objects.create(code="BENCH", name="Sở Giáo dục và Đào tạo Bench", place_name="Lào Cai")
    author = User.objects.create_user(username="bench-gvcn", password=None, full_name="Giáo Viên Bench")
    sample = secondary_record()
    xml = year_record_xml(sample)  # never rendered here: one document shared keeps the rows cheap
    sha = hashlib.sha256(xml).hexdigest()
    signed_at = dt.datetime.now(dt.UTC)
    world = []
    per_school = [records // schools + (1 if i < records % schools else 0) for i in range(schools)]
    for i, count in enumerate(per_school):
        code = f"bench-{i:03d}"
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(code=code, name=f"Trường Bench {i}", levels=(SchoolLevel.LOWER_SECONDARY,)),
            division=None,
        )
        with school:
            year = SchoolYear.objects.filter(code="2025-2026").first() or school_year_open(
                code="2025-2026",
                starts_on=dt.date(2025, 9, 5),
                ends_on=dt.date(2026, 5, 31),
                levels=list(school.levels),
            )
            school_class = class_create(school_year=year, name="8A", grade=8, levels=school.levels)
            student = Student.objects.create(
                student_code=f"B{i:03d}",
                personal_id=None,
                temporary_code=f"TAM-B{i:03d}",
                full_name="Học Sinh Bench",
                sex=1,
                date_of_birth=sample.student.date_of_birth,
            )
            enrolment = student_enrol(
                student=student, school_class=school_class, enrolled_on=year.starts_on, number=1
            )
            rows = YearRecord.objects.bulk_create(
                YearRecord(
                    enrolment=enrolment,
                    record_id=f"{code}.B{i:03d}-{n:04d}.2025-2026",
                    version=1,
                    status=YearRecordStatus.ISSUED,
                    xml=xml,
                    sha256=sha,
                    created_by=author,
                )
                for n in range(count)
            )
            YearRecordSignature.objects.bulk_create(
                YearRecordSignature(
                    record=row,
                    position=position,
                    role=step.value,
                    signed_xml=xml,
                    sha256=sha,
                    signer=author,
                    signer_name="Người Ký Bench",
                    certificate_fingerprint="0" * 64,
                    certificate_serial="1",
                    signed_at=signed_at,
                )
                for row in rows
                for position, step in enumerate(SIGNING_ORDER, start=1)
            )
        connection.set_schema_to_public()
        for row in rows:
            issued_record_add(
                school=school,
                record_id=row.record_id,
                version=1,
                sha256=sha,
                school_year="2025-2026",
                student_code=f"B{i:03d}",
                personal_id=None,
                at=signed_at,
            )
        world.append((school, [row.pk for row in rows]))
        if (i + 1) % 10 == 0:
            progress(f"  {i + 1} schools")
    return world


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=50)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--sweeps", type=int, default=5, help="sweeps in a row (5)")
    args = parser.parse_args()
    os.environ["HOCBA_PDF_QUEUE"] = QUEUE  # after issue 15: the render tasks' queue, from settings

    with throwaway_django() as server_version:
        import redis
        from django.conf import settings
        from django.db import connection, transaction
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from config.celery import app
        from transcripts.records import pdf

        # Before issue 15 the render tasks went to Celery's default queue: the bench's own too.
        app.conf.task_default_queue = QUEUE
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        try:
            progress(f"provisioning {args.schools} schools with {args.records} issued records ...")
            world = make_world(args.schools, args.records)
            progress("issuing (year_record_pdfs_render in each school's transaction) ...")
            for school, pks in world:
                with school, transaction.atomic():
                    pdf.year_record_pdfs_render(pks)
            connection.set_schema_to_public()
            issued_messages = broker.llen(QUEUE)
            broker.delete(QUEUE)  # lost
            later = timezone.now() + dt.timedelta(hours=2)
            timezone.now = lambda: later  # type: ignore[assignment] # the marks and graces run out
            schemas = [school.schema_name for school, _ in world]
            runs = []
            for n in range(1, args.sweeps + 1):
                before = broker.llen(QUEUE)
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    queued = pdf.year_record_pdfs_missing()
                    seconds = time.perf_counter() - started
                sql = [q["sql"] for q in captured.captured_queries]
                sql_seconds = sum(float(q["time"]) for q in captured.captured_queries)
                work = [q for q in sql if not q.lstrip().upper().startswith("SET ")]
                touched = sum(1 for s in schemas if any(s in q for q in sql))
                runs.append(
                    (
                        n,
                        seconds,
                        sql_seconds,
                        len(sql),
                        len(work),
                        touched,
                        sum(map(len, queued.values())),
                        broker.llen(QUEUE) - before,
                    )
                )
                progress(f"  sweep {n}: {seconds * 1000:.0f} ms")
        finally:
            broker.delete(QUEUE)
            broker.close()

    print(
        f"PDF sweep benchmark · {platform.node()} · {os.cpu_count()} cores"
        f" · load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end"
        f" · PostgreSQL {server_version} · Python {platform.python_version()}"
    )
    print(
        f"{args.records} issued records without a PDF over {args.schools} schools; messages sent at issue:"
        f" {issued_messages} (dropped, as lost); the clock moved 2 h on; {args.sweeps} sweeps in a row\n"
    )
    print(
        f"  {'sweep':>5} {'ms':>9} {'SQL ms':>8} {'statements':>11} {'without SET':>12}"
        f" {'schools visited':>16} {'queued':>7} {'LLEN +':>7}"
    )
    for n, seconds, sql_seconds, total, work, touched, queued_count, added in runs:
        print(
            f"  {n:>5} {seconds * 1000:>9.1f} {sql_seconds * 1000:>8.1f} {total:>11} {work:>12}"
            f" {touched:>16} {queued_count:>7} {added:>7}"
        )
    first, rest = runs[0], runs[1:]
    if rest:
        print(
            f"\n  first sweep {first[1] * 1000:.1f} ms ({first[2] * 1000:.1f} ms of SQL),"
            f" {first[7]} messages; the {len(rest)} after it:"
            f" median {statistics.median(r[1] for r in rest) * 1000:.1f} ms,"
            f" {sum(r[7] for r in rest)} messages in all"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
