"""The data set of bench/progress.py: a big school (2,025 students), a small one (200) and the big
one holding five school years, provisioned and seeded by the project's own services, their records
copied in bulk, then reconciled; kept in the bench's own database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import bench_django as support_bench_django

DATASET_VERSION = 1
SEED = 20261206
MARKER_TABLE = "bench_progress_dataset"
PASSWORD = "bench-only"  # noqa: S105 - throwaway bench accounts
OPEN_CLASSES = 4  # the last classes of a school: not approved yet, no records
# (code, name, classes, students a class, earlier school years held)
SCHOOLS = (
    ("bp-big", "Trường THCS Bench Tiến độ Lớn", 45, 45, 0),
    ("bp-small", "Trường THCS Bench Tiến độ Nhỏ", 5, 40, 0),
    ("bp-hist", "Trường THCS Bench Tiến độ Năm cũ", 45, 45, 4),
)
PERSONAL_IDS = itertools.count(1)  # the copies' personal ID numbers (9…) and messages' (8…)
# The bulk-made records' statuses and their shares (the first class keeps its own, data complete).
STATUS_SHARES = {
    "data_complete": 0.06,
    "confirmed": 0.10,
    "signed_homeroom": 0.10,
    "signed_principal": 0.09,
    "issued": 0.15,
    "queued": 0.10,
    "acknowledged": 0.35,
    "rejected": 0.05,
}
INDEXED = ("issued", "queued", "acknowledged", "rejected")  # versions in the public index
REJECTION_CODES = ("schema", "signature", "personal_id_missing", "mismatch")
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # the verification code's symbols
SLOW_MS = 20.0  # the brief's threshold for "slow" at 2,000 students


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def description() -> dict:
    return {
        "version": DATASET_VERSION,
        "seed": SEED,
        "schools": [list(s) for s in SCHOOLS],
        "open": OPEN_CLASSES,
        "shares": STATUS_SHARES,
    }


# --- the database --------------------------------------------------------------------------------


@contextlib.contextmanager
def bench_django(name: str, *, fresh: bool) -> Iterator[str]:
    """Django on the bench's own database (bench.support.bench_django), public and template
    schemas migrated; yields the server's version. `fresh`: drop it first."""
    with support_bench_django(name, fresh=fresh, say=progress) as version:
        yield version


def dataset_present() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS public.{MARKER_TABLE} (description jsonb NOT NULL)")
        cursor.execute(f"SELECT description FROM public.{MARKER_TABLE}")  # noqa: S608 - our table
        row = cursor.fetchone()
    if row is None:
        return False
    stored = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    return bool(stored == description())


def dataset_mark() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM public.{MARKER_TABLE}")  # noqa: S608 - our table
        cursor.execute(
            f"INSERT INTO public.{MARKER_TABLE} (description) VALUES (%s::jsonb)",  # noqa: S608
            [json.dumps(description())],
        )


def dataset_dirty() -> bool:
    """Whether the database holds anything of an earlier data set (its schools)."""
    from portal.models import School

    return School.objects.filter(code__in=[code for code, *_rest in SCHOOLS]).exists()


# --- the data set --------------------------------------------------------------------------------


@dataclass
class BenchSchool:
    school: Any  # portal.models.School
    year: str
    principal: Any
    homeroom: Any
    classes: int
    students: int
    records: int
    years: int


def school_make(
    code: str, name: str, n_classes: int, per_class: int, history: int, rng: random.Random
) -> None:
    """One school as described in the module's docstring; `history` earlier school years held
    too, each a copy of the current one with every record acknowledged."""
    from django.db import transaction

    from portal.choices import Role, SchoolLevel
    from portal.models import RoleAssignment, User
    from portal.provisioning import SchoolSpec, school_provision
    from schools.models import Enrolment, SchoolClass
    from schools.services import school_year_open
    from transcripts.demo import school_demo_seed
    from transcripts.models import YearRecord
    from transcripts.records.services import year_records_create
    from transcripts.yearclose import class_year_close

    started = time.perf_counter()
    principal = User.objects.create_user(
        username=f"{code}.hieutruong", password=PASSWORD, full_name="Hiệu Trưởng Bench"
    )
    homeroom = User.objects.create_user(
        username=f"{code}.gvcn", password=PASSWORD, full_name="Giáo Viên Chủ Nhiệm Bench"
    )
    school, _ = school_provision(
        actor=None,
        spec=SchoolSpec(code=code, name=name, levels=(SchoolLevel.LOWER_SECONDARY,)),
        division=None,
    )
    RoleAssignment.objects.create(user=principal, role=Role.PRINCIPAL, school=school)
    RoleAssignment.objects.create(user=homeroom, role=Role.HOMEROOM_TEACHER, school=school)
    school_demo_seed(school, {"thcs.gvcn": homeroom}, students_per_class=per_class)
    progress(f"  {code}: provisioned and seeded ({time.perf_counter() - started:.0f} s)")

    with school, transaction.atomic():
        templates = list(SchoolClass.objects.select_related("school_year").order_by("pk"))
        assert len(templates) == 2, templates  # 6A1 (the homeroom teacher's) and 9A1
        for template in templates:
            class_year_close(actor=principal, school=school, school_class=template)
        templates = list(SchoolClass.objects.select_related("school_year").order_by("pk"))
        year = templates[0].school_year
        year_records_create(actor=homeroom, school=school, school_class=templates[0])
        model = YearRecord.objects.filter(enrolment__school_class=templates[0]).order_by("pk").first()
        assert model is not None
        document = (bytes(model.xml), model.sha256)

        # The templates' students, in class-list order, with their years.
        rows: dict[int, list[tuple[Any, Any, Any]]] = {}
        for template in templates:
            found = Enrolment.objects.filter(school_class=template).select_related("student", "year")
            rows[template.pk] = [(e.student, e, e.year) for e in found.order_by("number")]

        # This year: copies of the templates, the last few not approved; 9A1's records made here.
        copies = classes_copy(
            school, year, templates, rows, range(2, n_classes), n_classes - OPEN_CLASSES, principal, tag=""
        )
        approved = [templates[1], *copies]
        made = records_make(school, year, approved, document, homeroom, rng, final=False)
        # Earlier years: every class approved, every record acknowledged.
        for back in range(1, history + 1):
            start = int(year.code[:4]) - back
            earlier = school_year_open(
                code=f"{start}-{start + 1}",
                starts_on=dt.date(start, 9, 5),
                ends_on=dt.date(start + 1, 5, 31),
                levels=list(school.levels),
                make_current=False,
            )
            closed = classes_copy(
                school, earlier, templates, rows, range(n_classes), n_classes, principal, tag=f"Y{back}"
            )
            made += records_make(school, earlier, closed, document, homeroom, rng, final=True)
    progress(
        f"  {code}: {n_classes} classes a year, {history} earlier years, {made} records made in bulk"
        f" ({time.perf_counter() - started:.0f} s)"
    )


def classes_copy(
    school: Any,
    year: Any,
    templates: list[Any],
    rows: dict[int, list[tuple[Any, Any, Any]]],
    indexes: range,
    approved_below: int,
    principal: Any,
    *,
    tag: str,
) -> list[Any]:
    """Copies of the two template classes in `year` (class j copies template j % 2): students,
    enrolments and the year's results, inserted in bulk; the classes of index below
    `approved_below` approved. Returns those approved."""
    from schools.models import Enrolment, SchoolClass, Student
    from transcripts.models import StudentYear

    approved = []
    for j in indexes:
        template = templates[j % 2]
        school_class = SchoolClass.objects.create(
            school_year=year,
            name=f"{template.grade}A{j + 1}",
            grade=template.grade,
            ruleset=template.ruleset,
        )
        students = []
        for student, enrolment, _year in rows[template.pk]:
            copy = Student(
                **{
                    f.attname: getattr(student, f.attname)
                    for f in Student._meta.concrete_fields
                    if f.attname != "id"
                }
            )
            prefix = f"{school.code.upper()}-{tag + '-' if tag else ''}"
            copy.student_code = f"{prefix}{school_class.name}-{enrolment.number:02d}"
            if copy.personal_id:
                copy.personal_id = f"9{next(PERSONAL_IDS):011d}"
            students.append(copy)
        Student.objects.bulk_create(students)
        enrolments = [
            Enrolment(
                student=copy,
                school_class=school_class,
                number=enrolment.number,
                status=enrolment.status,
                enrolled_on=year.starts_on,
            )
            for copy, (_student, enrolment, _year) in zip(students, rows[template.pk], strict=True)
        ]
        Enrolment.objects.bulk_create(enrolments)
        StudentYear.objects.bulk_create(
            StudentYear(
                **{
                    f.attname: getattr(student_year, f.attname)
                    for f in StudentYear._meta.concrete_fields
                    if f.attname not in ("id", "enrolment_id")
                },
                enrolment=copy_enrolment,
            )
            for copy_enrolment, (_student, _enrolment, student_year) in zip(
                enrolments, rows[template.pk], strict=True
            )
        )  # before the approval: the closed book refuses inserts after it
        if j < approved_below:
            SchoolClass.objects.filter(pk=school_class.pk).update(
                closed_at=template.closed_at, closed_by=principal
            )
            approved.append(school_class)
    return approved


def records_make(
    school: Any,
    year: Any,
    classes: list[Any],
    document: tuple[bytes, str],
    homeroom: Any,
    rng: random.Random,
    *,
    final: bool,
) -> int:
    """Version 1 of the year record of the classes' students (not those waiting for August), in
    bulk: in a spread of statuses (STATUS_SHARES), or all acknowledged when `final`; the public
    index rows of the issued ones and their messages to the Ministry."""
    from django.utils import timezone

    from portal.choices import IssuedRecordStatus
    from portal.models_verification import IssuedRecord
    from registry.models import OutboxMessage
    from schools.models import Enrolment
    from transcripts.document.records import year_record_id
    from transcripts.models import YearRecord
    from transcripts.rules.codec import SUMMER_OUTCOMES

    xml, sha256 = document
    now = timezone.now()
    statuses, weights = list(STATUS_SHARES), list(STATUS_SHARES.values())
    records = []
    for enrolment in Enrolment.objects.filter(school_class__in=classes).select_related("student", "year"):
        if enrolment.year.results.get("outcome") in SUMMER_OUTCOMES:
            continue  # waits for the August close, as year_records_create leaves it
        records.append(
            YearRecord(
                enrolment=enrolment,
                record_id=year_record_id(
                    school_code=school.code,
                    student_code=enrolment.student.student_code,
                    school_year=year.code,
                ),
                version=1,
                status="acknowledged" if final else rng.choices(statuses, weights)[0],
                xml=xml,
                sha256=sha256,
                created_at=now,
                created_by=homeroom,
                status_changed_at=now,
            )
        )
    YearRecord.objects.bulk_create(records, batch_size=500)
    indexed = [r for r in records if r.status in INDEXED]
    IssuedRecord.objects.bulk_create(
        [
            IssuedRecord(
                school=school,
                school_year=year.code,
                record_id=r.record_id,
                version=1,
                sha256=sha256,
                status=IssuedRecordStatus.ISSUED,
                issued_at=now,
                status_changed_at=now,
                student_code=r.enrolment.student.student_code,
                verification_code="".join(rng.choice(CODE_ALPHABET) for _ in range(16)),
            )
            for r in indexed
        ],
        batch_size=1000,
    )
    states = {"queued": "sent", "acknowledged": "acknowledged", "rejected": "rejected"}
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                school=school,
                record_id=r.record_id,
                version=1,
                kind="submit",
                idempotency_key=hashlib.sha256(f"{r.record_id}:1".encode()).hexdigest(),
                document=None if r.status == "acknowledged" else b"<placeholder/>",
                student_code=r.enrolment.student.student_code,
                personal_id=r.enrolment.student.personal_id or f"8{next(PERSONAL_IDS):011d}",
                state=states[r.status],
                receipt_id=f"bench-{r.record_id}",
                sent_at=now,
                decided_at=None if r.status == "queued" else now,
                reasons=[{"code": rng.choice(REJECTION_CODES), "message": "bench"}]
                if r.status == "rejected"
                else [],
            )
            for r in indexed
            if r.status in states
        ],
        batch_size=1000,
    )
    return len(records)


def dataset_make() -> None:
    from portal.db import connection
    from portal.models import Department, School
    from portal.progress.services import progress_reconcile

    rng = random.Random(SEED)
    # The records' issuer (the snapshot names the department).
    if not Department.objects.exists():
        Department.objects.create(code="BENCH", name="Sở Giáo dục và Đào tạo Bench", place_name="Lào Cai")
    for code, name, n_classes, per_class, history in SCHOOLS:
        school_make(code, name, n_classes, per_class, history, rng)
    connection.set_schema_to_public()
    schools = list(School.objects.filter(code__in=[code for code, *_rest in SCHOOLS]).order_by("pk"))
    progress_reconcile(schools=schools)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # the whole database: every schema's tables
    dataset_mark()


def bench_schools() -> list[BenchSchool]:
    from portal.models import School, User
    from schools.demo import YEAR_CODE
    from schools.models import Enrolment, SchoolClass, SchoolYear
    from transcripts.models import YearRecord

    found = []
    for code, *_rest in SCHOOLS:
        school = School.objects.get(code=code)
        with school:
            found.append(
                BenchSchool(
                    school=school,
                    year=YEAR_CODE,
                    principal=User.objects.get(username=f"{code}.hieutruong"),
                    homeroom=User.objects.get(username=f"{code}.gvcn"),
                    classes=SchoolClass.objects.filter(school_year__code=YEAR_CODE).count(),
                    students=Enrolment.objects.filter(school_class__school_year__code=YEAR_CODE).count(),
                    records=YearRecord.objects.filter(
                        enrolment__school_class__school_year__code=YEAR_CODE
                    ).count(),
                    years=SchoolYear.objects.count(),
                )
            )
    return found
