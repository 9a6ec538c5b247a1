"""Year records of a 40-student class: XML build + XSD validation, and PDF render throughput.

    make bench-render                                  # a primary class (TT27, 2-page records)
    make bench-render ARGS="--level lower-secondary"   # a lower secondary class (TT22, 3 pages)
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/render.py [--level ...] [--runs 3] [--students 40]

Runs in a throwaway database (bench/support.py). A school of the level asked (primary by default:
issue 15's figure is for the 2-page primary record) is provisioned and seeded with the demo data
(transcripts.demo, every class at --students); the principal approves its first class's year
(transcripts.yearclose.class_year_close) and the year records are created
(transcripts.records.services.year_records_create: the students whose outcome waits for August
get none until its close). Then, in this one process (one core):

(a) the class's snapshot from the database (class_snapshots, a fixed number of queries), and the
    XML of every student: year_record_xml with XSD validation, records per second;
(b) the PDF of every record, as the rendering task makes it: the stored XML parsed back
    (year_record_parse) and printed by WeasyPrint (year_record_pdf), documents per second per
    core, median of --runs passes over the class (each pass renders every record once), by the
    wall clock and by this process's CPU time (the same on a quiet machine; on a busy one the CPU
    figure is the one that says what a core does);
(c) once, the service itself (transcripts.records.pdf.year_record_pdf_render: render, store the
    bytes and their SHA-256), documents per second;
(d) the reference: WeasyPrint alone on the same HTML (transcripts.pdf.year_record_html, the form
    with its stylesheet inline, made beforehand: only WeasyPrint is timed, not the XML parse nor
    the template), a new document and font configuration each time, as a one-off `weasyprint`
    call prints it: WeasyPrint's single-document rate, that (b) must beat by reusing what each
    render repeats.

Only the public face of transcripts.pdf is used, so this script runs unchanged on an older
checkout (issue 15's before figure: copy it into a worktree of the base commit and run it there).

Printed: the machine, whether Debian's libharfbuzz-subset0 is installed (WeasyPrint subsets
fonts about twice as fast with it), pages per document, the figures, and the ratio of the render
throughput to the issue's target: 5 two-page records per second per core (issue 15; issue 4's was
3). Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import throwaway_django

TARGET_DOCS_PER_SECOND = 5.0  # two-page records per second per core (issue 15; issue 4's was 3)
# The demo's usernames and class names by level (schools.demo: "<prefix>.gvcn" is the homeroom
# teacher of the school's first class).
LEVELS = {"primary": "th", "lower-secondary": "thcs"}
HARFBUZZ_PACKAGE = "libharfbuzz-subset0"
# A verification code of the real length (the QR code's size depends on it), for pass (b).
SAMPLE_CODE = "K7QX-9M2P-4DHT-W8RC"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def harfbuzz_subset_installed() -> str:
    """ "yes (<version>)", "no" or "unknown (no dpkg)": what `dpkg -s libharfbuzz-subset0` says."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status} ${Version}", HARFBUZZ_PACKAGE],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except FileNotFoundError:
        return "unknown (no dpkg)"
    if result.returncode == 0 and result.stdout.startswith("install ok installed"):
        return f"yes ({result.stdout.split()[-1]})"
    return "no: apt-get install libharfbuzz-subset0 (WeasyPrint is about twice as fast with it)"


def pdf_pages(pdf: bytes) -> int | None:
    """The page count, as poppler's pdfinfo reads it (None without poppler-utils)."""
    try:
        result = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, timeout=30, check=False)
    except FileNotFoundError:
        return None
    match = re.search(rb"^Pages:\s+(\d+)", result.stdout, re.M)
    return int(match.group(1)) if match else None


def timed_pass(items, work) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of work(item) over every item."""
    wall, cpu = time.perf_counter(), time.process_time()
    for item in items:
        work(item)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="passes over the class (default 3)")
    parser.add_argument("--students", type=int, default=40, help="students per class (default 40)")
    parser.add_argument(
        "--level", choices=sorted(LEVELS), default="primary", help="the school's level (default primary)"
    )
    args = parser.parse_args()
    prefix = LEVELS[args.level]

    with throwaway_django() as server_version:
        import weasyprint
        from django.db import connection

        from portal.choices import Role, SchoolLevel
        from portal.models import Department, RoleAssignment, User
        from portal.provisioning import SchoolSpec, school_provision
        from portal.services import issued_record_add
        from schools.models import Enrolment, SchoolClass
        from transcripts.demo import school_demo_seed
        from transcripts.document import year_record_parse, year_record_xml
        from transcripts.models import StudentYear, YearRecord, YearRecordPdf
        from transcripts.pdf import year_record_html, year_record_pdf
        from transcripts.pdf.render import FONT_DIR
        from transcripts.records.pdf import verify_url_for, year_record_pdf_render
        from transcripts.records.services import year_records_create
        from transcripts.records.snapshot import class_snapshots
        from transcripts.selectors import active_enrolments, student_year_retakes
        from transcripts.yearclose import (
            class_summer_close,
            class_year_close,
            summer_cell_save,
        )

        progress("seeding a school ...")
        Department.objects.create(code="BENCH", name="Sở Giáo dục và Đào tạo Bench", place_name="Lào Cai")
        users = {
            f"{prefix}.{role}": User.objects.create_user(
                username=f"{prefix}.{role}", password="bench-only", full_name=name
            )
            for role, name in (
                ("gvcn", "Nguyễn Thị Chủ Nhiệm"),
                ("gvbm", "Trần Văn Bộ Môn"),
                ("hieutruong", "Lê Văn Hiệu Trưởng"),
            )
        }
        level, school_name = {
            "primary": (SchoolLevel.PRIMARY, "Trường Tiểu học Bench"),
            "lower-secondary": (SchoolLevel.LOWER_SECONDARY, "Trường THCS Bench"),
        }[args.level]
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(code=f"bench-{prefix}", name=school_name, levels=(level,)),
            division=None,
        )
        for role, kind in (
            ("gvcn", Role.HOMEROOM_TEACHER),
            ("gvbm", Role.SUBJECT_TEACHER),
            ("hieutruong", Role.PRINCIPAL),
        ):
            RoleAssignment.objects.create(user=users[f"{prefix}.{role}"], role=kind, school=school)
        principal = users[f"{prefix}.hieutruong"]
        school_demo_seed(school, users, students_per_class=args.students)

        with school:
            # The first class is the one with the demo homeroom teacher (records need their signer).
            school_class = SchoolClass.objects.filter(homeroom_teacher__isnull=False).order_by("pk").first()
            students = Enrolment.objects.filter(school_class=school_class).count()
            progress(f"approving {school_class.name} ({students} students) and creating its records ...")
            class_year_close(actor=principal, school=school, school_class=school_class)
            outcome = year_records_create(actor=principal, school=school, school_class=school_class)
            if outcome.waiting:  # August: the re-assessments pass, the re-training too; close again
                progress(f"August for {len(outcome.waiting)} students ...")
                school_class = SchoolClass.objects.get(pk=school_class.pk)
                for year in StudentYear.objects.filter(enrolment__school_class=school_class):
                    cells = [
                        (
                            f"retake:{code}",
                            "Đ" if year.results["subjects"][code]["year"] in ("Đ", "CĐ") else "6",
                        )
                        for code in student_year_retakes(year)
                    ]
                    if year.results.get("outcome") == "summer_training":
                        cells.append(("conduct_after_training", "Đ"))
                    for field, value in cells:
                        summer_cell_save(
                            actor=users[f"{prefix}.gvcn"],
                            school=school,
                            school_class=school_class,
                            enrolment_id=year.enrolment_id,
                            field=field,
                            raw=value,
                        )
                class_summer_close(actor=principal, school=school, school_class=school_class)
                summer = year_records_create(actor=principal, school=school, school_class=school_class)
                waiting = summer.waiting
            else:
                waiting = []
            records = list(
                YearRecord.objects.filter(enrolment__school_class=school_class)
                .select_related("enrolment__student")
                .order_by("pk")
            )
            school_class = SchoolClass.objects.get(pk=school_class.pk)
            # The students with a record (the others' results wait for August: no snapshot yet).
            with_record = {r.enrolment_id for r in records}
            enrolments = [e for e in active_enrolments(school_class) if e.pk in with_record]

            # (a) snapshot of the class, then the XML of each student with XSD validation.
            progress("XML ...")
            snapshot_times, xml_rates = [], []
            for _ in range(args.runs):
                start = time.perf_counter()
                snapshots = class_snapshots(school=school, school_class=school_class, enrolments=enrolments)
                snapshot_times.append(time.perf_counter() - start)
                wall, _cpu = timed_pass(snapshots.values(), year_record_xml)
                xml_rates.append(len(snapshots) / wall)
            parse_wall, _cpu = timed_pass(records, lambda r: year_record_parse(bytes(r.xml)))

            # (b) the PDFs, as the task renders them (from the stored XML), without storing.
            def render(record) -> bytes:
                xml = bytes(record.xml)
                return year_record_pdf(
                    year_record_parse(xml),
                    xml=xml,
                    verify_url=verify_url_for(record.record_id, record.version, code=SAMPLE_CODE),
                    verification_code=SAMPLE_CODE,
                )

            progress("PDF: warming up ...")
            sample = render(records[0])  # fonts, templates, WeasyPrint's caches
            pages = [pdf_pages(render(r)) for r in records[:3]]
            runs = []
            for run in range(args.runs):
                progress(f"PDF: pass {run + 1}/{args.runs} over {len(records)} records ...")
                runs.append(timed_pass(records, render))
            walls = [w for w, _ in runs]
            cpus = [c for _, c in runs]

            # (d) WeasyPrint alone on the same HTML, nothing reused (a new font configuration too);
            # the HTML made beforehand, so only WeasyPrint is timed.
            def standalone_html(record) -> str:
                xml = bytes(record.xml)
                url = verify_url_for(record.record_id, record.version, code=SAMPLE_CODE)
                return year_record_html(year_record_parse(xml), verify_url=url, verification_code=SAMPLE_CODE)

            def weasyprint_alone(html: str) -> bytes:
                return weasyprint.HTML(string=html, base_url=FONT_DIR.as_uri() + "/").write_pdf(
                    pdf_variant="pdf/a-3b"
                )

            progress("PDF: WeasyPrint alone on the same HTML ...")
            htmls = [standalone_html(r) for r in records]
            alone_sample = weasyprint_alone(htmls[0])
            alone_wall, alone_cpu = timed_pass(htmls, weasyprint_alone)

            # (c) the service, once per record (it never renders a record twice). It prints the
            # public index's verification code, so the records are indexed first, as issuing does.
            for record in records:
                issued_record_add(
                    school=school,
                    record_id=record.record_id,
                    version=record.version,
                    sha256=record.sha256,
                    school_year=school_class.school_year.code,
                    student_code=record.enrolment.student.student_code,
                    personal_id=None,
                    at=record.created_at,
                )
            progress("PDF: the service (render + store) ...")
            service_wall, _cpu = timed_pass(records, lambda r: year_record_pdf_render(record_id=r.pk))
            stored = YearRecordPdf.objects.filter(record__in=records)
            sizes = [len(bytes(p.pdf)) for p in stored]
        connection.set_schema_to_public()

        n = len(records)
        median_wall, median_cpu = statistics.median(walls), statistics.median(cpus)
        docs_per_second = n / median_wall
        docs_per_cpu_second = n / median_cpu
        alone_pages = pdf_pages(alone_sample)
        page_counts = sorted({p for p in pages if p is not None})
        print(
            f"Render benchmark · {platform.node()} · {os.cpu_count()} cores · PostgreSQL {server_version}"
            f" · WeasyPrint {weasyprint.__version__} · Python {platform.python_version()}"
        )
        print(f"{HARFBUZZ_PACKAGE} installed: {harfbuzz_subset_installed()}")
        print(
            f"class {school_class.name} (grade {school_class.grade}, {school_class.ruleset}):"
            f" {students} students,"
            f" {n} year records ({n - len(outcome.created)} after August's close, {len(waiting)} students"
            f" without), one process (one core),"
            f" median of {args.runs} runs\n"
        )
        print(
            f"  snapshot of the class (database)   {statistics.median(snapshot_times) * 1000:7.1f} ms"
            f"   ({statistics.median(snapshot_times) / max(len(enrolments), 1) * 1000:.1f} ms a student)"
        )
        print(
            f"  XML build + XSD validation         {statistics.median(xml_rates):7.0f} records/s"
            f"   ({1000 / statistics.median(xml_rates):.1f} ms a record)"
        )
        print(f"  XML parse back (+ XSD)             {n / parse_wall:7.0f} records/s")
        print(
            f"  PDF render (parse + WeasyPrint)    {docs_per_second:7.2f} documents/s"
            f"   ({median_wall / n * 1000:.0f} ms a document; CPU {docs_per_cpu_second:.2f} documents/CPU-s)"
        )
        print(f"    passes (s)                       {'  '.join(f'{w:.2f}' for w in walls)}")
        print(
            f"  WeasyPrint alone, same HTML        {n / alone_wall:7.2f} documents/s"
            f"   ({alone_wall / n * 1000:.0f} ms a document; CPU {n / alone_cpu:.2f} documents/CPU-s;"
            f" {alone_pages or '?'} pages, {len(alone_sample) / 1024:.0f} KiB; one pass)"
        )
        print(
            f"  PDF via the service (+ store)      {n / service_wall:7.2f} documents/s"
            f"   ({service_wall / n * 1000:.0f} ms a document)"
        )
        pages_text = ", ".join(map(str, page_counts)) or "unknown (no pdfinfo)"
        print(
            f"  pages per document                 {pages_text}"
            f"   size {statistics.median(sizes) / 1024:.0f} KiB median, first {len(sample) / 1024:.0f} KiB"
        )
        print()
        print(
            f"  render ÷ target {TARGET_DOCS_PER_SECOND:.0f} documents/s/core   "
            f"{docs_per_second / TARGET_DOCS_PER_SECOND:5.2f}× by the clock"
            f"   ({'met' if docs_per_second >= TARGET_DOCS_PER_SECOND else 'NOT met'}),"
            f" {docs_per_cpu_second / TARGET_DOCS_PER_SECOND:.2f}× by CPU time"
            f" ({'met' if docs_per_cpu_second >= TARGET_DOCS_PER_SECOND else 'NOT met'})"
        )
        print(
            f"  render ÷ WeasyPrint alone          {docs_per_second * alone_wall / n:5.2f}× by the clock,"
            f" {docs_per_cpu_second * alone_cpu / n:.2f}× by CPU time"
        )
        if page_counts and page_counts != [2]:
            print(
                f"  (the target is for two-page records; these have {', '.join(map(str, page_counts))} pages)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
